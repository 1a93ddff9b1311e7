// A caching allocator for the arrays a Graph run creates: pycnn._C.GraphArena.
//
// Why: a network allocates the same sequence of arrays every run. glibc serves the large ones
// (ResNet-50 at batch 8: 8 x 256 x 56 x 56 floats = 25.7 MB) with fresh mmaps or trims them back
// to the kernel, so each run page-faults and zeroes them again (2,167 faults per ResNet-50 batch-8
// run) and unmaps them with TLB shootdowns on both cores (~5% of the run; malloc told to keep its
// memory, MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_, ran as fast as this arena).
//
// How: NumPy's allocator hook (NEP 49, PyDataMem_SetHandler) is set to this arena for the
// duration of Graph.run only (the handler is a context variable, restored after the run), so
// every array made in the run, by our bound kernels or by NumPy, takes a block from the arena.
// Blocks of at least kMinCached bytes (sizes rounded to pages) are kept when freed, up to `cap`
// bytes in all; smaller ones go to malloc. A request takes the smallest cached block at least
// its size (best fit), and a freed block that does not fit under the cap first evicts cached
// blocks smaller than itself (smallest first): with exact sizes only, a network with many
// tensor sizes kept the wrong ones once the cap filled, and its large arrays page-faulted every
// run (EfficientNet-B0 at batch 8: ~10,500 faults per run, a 14 MB gate product 6x slower
// than with its block cached). Each array keeps a reference to the handler
// capsule, so arrays that outlive the run (the outputs) or the Graph free into the arena later
// and the cache itself lives until the last of them is gone.
//
// Layout of a block: a 64-byte header (sizes, a magic number) and then the array's data, 64-byte
// aligned.
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define NPY_TARGET_VERSION NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "bindings_cpu.h"

namespace pycnn {

namespace {

constexpr size_t kHeader = 64;
constexpr size_t kMinCached = size_t(256) << 10;
constexpr uint64_t kMagic = 0x70796e6e6172656eULL;  // "pycnnaren"

struct Header {
  uint64_t magic;
  size_t user_bytes;   // what the array asked for
  size_t block_bytes;  // data bytes allocated after the header (the cache key)
};

struct BlockCache {
  std::mutex mu;
  std::map<size_t, std::vector<char*>> free_blocks;  // block_bytes -> blocks (ordered: best fit)
  size_t cached = 0, cap = 0;
  uint64_t hits = 0, misses = 0;

  ~BlockCache() { release(); }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& kv : free_blocks)
      for (char* b : kv.second) std::free(b);
    free_blocks.clear();
    cached = 0;
  }
};

size_t block_size(size_t n) {
  if (n < kMinCached) return n == 0 ? 1 : n;
  return (n + 4095) / 4096 * 4096;
}

void* arena_malloc(void* ctx, size_t n) {
  auto* cache = static_cast<BlockCache*>(ctx);
  const size_t bs = block_size(n);
  if (bs > SIZE_MAX - kHeader) return nullptr;
  char* base = nullptr;
  size_t block = bs;  // the block's size: bs, or a larger cached block's (its cache key when freed)
  if (bs >= kMinCached) {
    std::lock_guard<std::mutex> lock(cache->mu);
    auto it = cache->free_blocks.lower_bound(bs);  // the smallest cached block that holds n
    if (it != cache->free_blocks.end()) {
      base = it->second.back();
      block = it->first;
      it->second.pop_back();
      if (it->second.empty()) cache->free_blocks.erase(it);
      cache->cached -= block;
      ++cache->hits;
    } else {
      ++cache->misses;
    }
  }
  // Every block's data on a cache line, small ones too: NumPy's (malloc's) 16 bytes put each
  // 64-byte vector of a channel-blocked tensor across two lines, and the 7x7 and 14x14 tensors
  // of a batch-1 network are under kMinCached (docs/performance.md, direct_oc, Alignment).
  if (!base) base = static_cast<char*>(std::aligned_alloc(64, (kHeader + bs + 63) / 64 * 64));
  if (!base) return nullptr;
  Header* h = reinterpret_cast<Header*>(base);
  h->magic = kMagic;
  h->user_bytes = n;
  h->block_bytes = block;
  return base + kHeader;
}

void* arena_calloc(void* ctx, size_t nelem, size_t elsize) {
  if (elsize != 0 && nelem > SIZE_MAX / elsize) return nullptr;
  const size_t n = nelem * elsize;
  void* p = arena_malloc(ctx, n);
  if (p) std::memset(p, 0, n);  // a reused block holds an earlier array's data
  return p;
}

void arena_free(void* ctx, void* p, size_t /*size: NumPy's view of it; the header is exact*/) {
  if (!p) return;
  auto* cache = static_cast<BlockCache*>(ctx);
  char* base = static_cast<char*>(p) - kHeader;
  const Header* h = reinterpret_cast<const Header*>(base);
  if (h->magic != kMagic) std::abort();  // not ours: freeing it would corrupt the heap
  const size_t bs = h->block_bytes;
  if (bs >= kMinCached) {
    std::lock_guard<std::mutex> lock(cache->mu);
    // Room under the cap made from smaller cached blocks (this one serves their sizes too).
    while (bs <= cache->cap && cache->cached + bs > cache->cap && !cache->free_blocks.empty() &&
           cache->free_blocks.begin()->first < bs) {
      auto it = cache->free_blocks.begin();
      std::free(it->second.back());
      it->second.pop_back();
      cache->cached -= it->first;
      if (it->second.empty()) cache->free_blocks.erase(it);
    }
    if (cache->cached + bs <= cache->cap) {
      cache->free_blocks[bs].push_back(base);
      cache->cached += bs;
      return;
    }
  }
  std::free(base);
}

void* arena_realloc(void* ctx, void* p, size_t n) {
  if (!p) return arena_malloc(ctx, n);
  const Header* h = reinterpret_cast<const Header*>(static_cast<char*>(p) - kHeader);
  if (h->magic != kMagic) std::abort();
  void* q = arena_malloc(ctx, n);
  if (!q) return nullptr;  // p stays valid, as realloc promises
  std::memcpy(q, p, std::min(n, h->user_bytes));
  arena_free(ctx, p, h->user_bytes);
  return q;
}

// Owns the handler struct and the cache; destroyed with the capsule (when neither the GraphArena
// nor any array made with it is left).
struct HandlerBox {
  PyDataMem_Handler handler;
  BlockCache cache;
};

void destroy_handler(PyObject* capsule) {
  delete static_cast<HandlerBox*>(PyCapsule_GetPointer(capsule, "mem_handler"));
}

class GraphArena {
 public:
  explicit GraphArena(size_t cap) {
    auto* box = new HandlerBox();
    std::memset(&box->handler, 0, sizeof(box->handler));
    std::strncpy(box->handler.name, "pycnn_graph_arena", sizeof(box->handler.name) - 1);
    box->handler.version = 1;
    box->handler.allocator = {&box->cache, arena_malloc, arena_calloc, arena_realloc, arena_free};
#ifdef __SANITIZE_ADDRESS__
    cap = 0;  // under ASan every block goes back to the heap, so use-after-free stays visible
#endif
    box->cache.cap = cap;
    PyObject* c = PyCapsule_New(&box->handler, "mem_handler", destroy_handler);
    if (!c) {
      delete box;
      throw py::error_already_set();
    }
    box_ = box;
    capsule_ = py::reinterpret_steal<py::object>(c);
  }

  // Makes the arena NumPy's allocator in the current context; returns the previous handler,
  // which exit() puts back.
  py::object enter() {
    PyObject* prev = PyDataMem_SetHandler(capsule_.ptr());
    if (!prev) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(prev);
  }
  void exit(py::object prev) {
    PyObject* r = PyDataMem_SetHandler(prev.ptr());
    if (!r) throw py::error_already_set();
    Py_DECREF(r);
  }

  size_t cap() const {
    std::lock_guard<std::mutex> lock(box_->cache.mu);
    return box_->cache.cap;
  }
  void set_cap(size_t cap) {
#ifdef __SANITIZE_ADDRESS__
    cap = 0;
#endif
    {
      std::lock_guard<std::mutex> lock(box_->cache.mu);
      box_->cache.cap = cap;
      if (box_->cache.cached <= cap) return;
    }
    box_->cache.release();  // over the new cap: start again empty
  }
  void release() { box_->cache.release(); }
  py::dict stats() const {
    std::lock_guard<std::mutex> lock(box_->cache.mu);
    py::dict d;
    d["hits"] = box_->cache.hits;
    d["misses"] = box_->cache.misses;
    d["cached_bytes"] = box_->cache.cached;
    d["cap"] = box_->cache.cap;
    return d;
  }

 private:
  HandlerBox* box_ = nullptr;  // owned by capsule_
  py::object capsule_;
};

}  // namespace

void bind_graph_arena(py::module_& m) {
  if (_import_array() < 0) throw py::error_already_set();
  py::class_<GraphArena>(m, "GraphArena",
                         "NumPy allocator (NEP 49) that keeps freed blocks of >= 256 KiB for reuse, up to cap "
                         "bytes; Graph.run installs it around each run.")
      .def(py::init<size_t>(), py::arg("cap"))
      .def("enter", &GraphArena::enter, "Install as NumPy's allocator here; returns the previous handler.")
      .def("exit", &GraphArena::exit, py::arg("prev"), "Restore the handler enter() returned.")
      .def_property("cap", &GraphArena::cap, &GraphArena::set_cap)
      .def("release", &GraphArena::release, "Free every cached block.")
      .def("stats", &GraphArena::stats, "hits, misses, cached_bytes, cap");
}

}  // namespace pycnn
