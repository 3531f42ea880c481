#pragma once
// AccessOrderDeque: an intrusive doubly-linked list of cache entries in access order (least recently used
// at the front) that keeps the total weight of its entries. A shard keeps three of them (window,
// probation, protected); they are separate from the shard because the list operations are the same for all
// three and know nothing of admission, eviction or readers.

#include <cstdint>

namespace riptide::performance::cache_detail {

/// The links an entry carries for the deque it is in; a deque's sentinel is a bare Links.
struct Links {
  Links* prev = this;
  Links* next = this;
};

/// `Node` derives from Links and has a `weight`; the deque owns no node.
template <typename Node>
struct AccessOrderDeque {
  Links sentinel;
  std::uint64_t weight = 0;

  [[nodiscard]] bool empty() const noexcept { return sentinel.next == &sentinel; }
  [[nodiscard]] Node* lru() noexcept { return empty() ? nullptr : static_cast<Node*>(sentinel.next); }
  void push_mru(Node* node) noexcept {
    node->prev = sentinel.prev;
    node->next = &sentinel;
    sentinel.prev->next = node;
    sentinel.prev = node;
    weight += node->weight;
  }
  void remove(Node* node) noexcept {
    node->prev->next = node->next;
    node->next->prev = node->prev;
    weight -= node->weight;
  }
  void clear() noexcept {
    sentinel.prev = sentinel.next = &sentinel;
    weight = 0;
  }
  [[nodiscard]] bool is_end(const Links* link) const noexcept { return link == &sentinel; }
};

}  // namespace riptide::performance::cache_detail
