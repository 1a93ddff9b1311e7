// Fibers for the CUDA emulator: a stack per emulated thread and a hand-written x86-64 context
// switch (callee-saved registers, MXCSR and the x87 control word; no system call, unlike
// swapcontext, which saves the signal mask on every switch).
#pragma once
#include <cstddef>

namespace pycnn_emu {

// Saves the current context's stack pointer in *save_sp and resumes the context whose stack
// pointer is next_sp.
extern "C" void pycnn_emu_switch(void** save_sp, void* next_sp);

// A stack pointer from which the first switch enters entry(arg) on the stack [base, base+size).
// entry must never return: it ends by switching away for good.
void* fiber_prepare(unsigned char* base, size_t size, void (*entry)(void*), void* arg);

// Stacks of `size` usable bytes with a guard page below each (an overflow faults instead of
// writing over the next stack); pages are committed when first touched.
unsigned char* stack_alloc(size_t size);
void stack_free(unsigned char* base, size_t size);

}  // namespace pycnn_emu
