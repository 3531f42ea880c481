#pragma once
// Node: one cache entry. Lock-free readers find it through the node table (node_table.hpp), the shard links
// it into one of its access-order deques (access_order_deque.hpp) and hands it to the grace periods
// (reclamation.hpp) when it leaves. Those components are templates on the node type; the entry's layout,
// and which of its fields readers may touch, are decided here once.

#include <cstdint>
#include <utility>

#include "riptide/performance/cache/access_order_deque.hpp"

namespace riptide::performance::cache_detail {

/// Which of a shard's deques a node is in.
enum class Queue : std::uint8_t { window, probation, protected_ };

// Readers touch only hash, expires_at, key and value, which never change after publication; the links,
// weight and queue belong to the shard lock holder. Both halves share one line for small entries: a
// drain's LRU moves then cost readers on other cores a line transfer per moved hot node and batch, but
// putting the halves on separate lines doubles small nodes and measured slower for one thread on a
// large working set (docs/PERFORMANCE.md ## Cache).
template <typename K, typename V>
struct Node : Links {
  Node(std::uint64_t h, const K& k, V&& v, std::uint64_t w, std::int64_t e)
      : weight(w), hash(h), expires_at(e), key(k), value(std::move(v)) {}
  std::uint64_t weight;
  Queue queue = Queue::window;
  std::uint64_t hash;
  std::int64_t expires_at;  // coarse/Clock ns; 0: never
  K key;
  V value;
};

}  // namespace riptide::performance::cache_detail
