// x86-64 System V context switch for the emulator's fibers (emu_fiber.h).
// Frame of a suspended fiber, from its saved stack pointer up:
//   [mxcsr:4][x87 cw:2][pad:2] r15 r14 r13 r12 rbx rbp <return address>
#include "emu_fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

#if !defined(__x86_64__)
#error "the CUDA emulator's fibers are written for x86-64"
#endif

asm(R"(
  .text
  .globl pycnn_emu_switch
  .hidden pycnn_emu_switch
  .type pycnn_emu_switch,@function
pycnn_emu_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size pycnn_emu_switch,.-pycnn_emu_switch

  .globl pycnn_emu_trampoline
  .hidden pycnn_emu_trampoline
  .type pycnn_emu_trampoline,@function
pycnn_emu_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%rbx
  ud2
  .cfi_endproc
  .size pycnn_emu_trampoline,.-pycnn_emu_trampoline
)");

extern "C" void pycnn_emu_trampoline();

namespace pycnn_emu {

void* fiber_prepare(unsigned char* base, size_t size, void (*entry)(void*), void* arg) {
  // After the first switch's `ret` lands in the trampoline, rsp is 16-byte aligned, as the
  // trampoline's `call` needs it.
  uintptr_t top = (reinterpret_cast<uintptr_t>(base) + size) & ~uintptr_t(15);
  uint64_t* f = reinterpret_cast<uint64_t*>(top - 80);
  uint32_t mxcsr = 0x1F80;  // all exceptions masked, round to nearest: the ABI's initial state
  uint16_t fpcw = 0x037F;
  uint64_t fp = mxcsr | (uint64_t)fpcw << 32;
  f[0] = fp;
  f[1] = 0;                                                  // r15
  f[2] = 0;                                                  // r14
  f[3] = 0;                                                  // r13
  f[4] = reinterpret_cast<uint64_t>(arg);                    // r12: the entry's argument
  f[5] = reinterpret_cast<uint64_t>(entry);                  // rbx: the entry
  f[6] = 0;                                                  // rbp
  f[7] = reinterpret_cast<uint64_t>(&pycnn_emu_trampoline);  // return address
  return f;
}

unsigned char* stack_alloc(size_t size) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  mprotect(p, page, PROT_NONE);  // the guard page: stacks grow down into it
  return static_cast<unsigned char*>(p) + page;
}

void stack_free(unsigned char* base, size_t size) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  munmap(base - page, size + page);
}

}  // namespace pycnn_emu
