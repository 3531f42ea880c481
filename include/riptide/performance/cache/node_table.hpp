#pragma once
// NodeTable: the open-addressing slot array through which lock-free readers find a shard's nodes. Only its
// memory layout, allocation and the tombstone value are here; the shard does the probing, inserting and
// rebuilding, because those also keep its live and tombstone counts and retire replaced tables. Separate
// so the layout readers depend on (one allocation, atomic slots, what a slot may hold) is stated in one place.

#include <atomic>
#include <cstdint>
#include <new>

namespace riptide::performance::cache_detail {

// Open-addressing slots in one allocation with their mask: a reader follows one pointer to the
// table, then probes. Slots hold nullptr (end of probe), a node, or the tombstone of a removed node
// (so a concurrent probe for a later key does not stop early).
template <typename Node>
struct NodeTable {
  std::uint64_t mask;

  [[nodiscard]] std::atomic<Node*>* slots() noexcept { return reinterpret_cast<std::atomic<Node*>*>(this + 1); }
  [[nodiscard]] std::uint64_t capacity() const noexcept { return mask + 1; }

  static NodeTable* create(std::uint64_t capacity) {
    void* raw = ::operator new(sizeof(NodeTable) + capacity * sizeof(std::atomic<Node*>));
    auto* table = new (raw) NodeTable{capacity - 1};
    for (std::uint64_t i = 0; i < capacity; ++i) new (table->slots() + i) std::atomic<Node*>(nullptr);
    return table;
  }
  static void destroy(NodeTable* table) noexcept {
    if (table == nullptr) return;
    table->~NodeTable();
    ::operator delete(static_cast<void*>(table));
  }

  [[nodiscard]] static Node* tombstone() noexcept { return reinterpret_cast<Node*>(std::uintptr_t{1}); }
};
static_assert(sizeof(std::atomic<void*>) == sizeof(std::uint64_t) && alignof(std::atomic<void*>) <= 8);

}  // namespace riptide::performance::cache_detail
