#pragma once
// Safe memory reclamation for the lock-free read path: readers announce themselves on striped counters of
// the current parity, writers retire unlinked nodes and replaced tables, flip the parity to start a grace
// period, and free what the previous one retired once no reader of the old parity is left. Writers never
// wait for readers. Separate from the shard because this protocol is independent of what is being retired
// and of the eviction policy; the shard only says what to retire and when to reclaim.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "riptide/performance/cache/reader_stripe.hpp"

namespace riptide::performance::cache_detail {

// Readers currently inside a read section, for one parity of one stripe. Each on its own line: readers
// on the current parity never share a line with the one a writer polls.
struct alignas(64) ReaderCount {
  std::atomic<std::int64_t> value{0};
};

/// Per reader stripe, one count per parity.
using ReaderCounts = std::array<std::array<ReaderCount, 2>, kReaderStripes>;

inline void leave_read_section(ReaderCounts& readers, const StripeLease& stripe, std::uint32_t p) noexcept {
  std::atomic<std::int64_t>& counter = readers[stripe.index()][p].value;
  if (stripe.exclusive()) {  // the writer's poll acquires it
    counter.store(counter.load(std::memory_order_relaxed) - 1, std::memory_order_release);
  } else {
    counter.fetch_sub(1, std::memory_order_release);
  }
}

// Read side of the grace period: register on the current parity, and re-check it so a writer that
// flipped in between (and may already have found the old parity empty) is not missed. The increment
// is a seq_cst RMW (the fence between it and the re-check); an owned stripe leaves with a plain
// release store.
[[nodiscard]] inline std::uint32_t enter_read_section(const std::atomic<std::uint32_t>& parity, ReaderCounts& readers,
                                                      const StripeLease& stripe) noexcept {
  for (;;) {
    const std::uint32_t p = parity.load(std::memory_order_seq_cst);
    std::atomic<std::int64_t>& counter = readers[stripe.index()][p].value;
    if (stripe.exclusive()) {
      counter.exchange(counter.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
    } else {
      counter.fetch_add(1, std::memory_order_seq_cst);
    }
    if (parity.load(std::memory_order_seq_cst) == p) return p;
    leave_read_section(readers, stripe, p);
  }
}

[[nodiscard]] inline bool quiescent(const ReaderCounts& readers, std::uint32_t old_parity) noexcept {
  for (const auto& stripe : readers)
    if (stripe[old_parity].value.load(std::memory_order_seq_cst) != 0) return false;
  return true;
}

// What a writer may free once its lock is released.
template <typename Node, typename Table>
struct Garbage {
  std::vector<Node*> nodes;
  std::vector<Table*> tables;
  void free() noexcept {
    for (Node* node : nodes) delete node;
    for (Table* table : tables) Table::destroy(table);
    nodes.clear();
    tables.clear();
  }
};

// Unlinked nodes and replaced tables wait in `retired` until a grace period starts (parity flip), then in
// `pending` until no reader of the old parity is left. Belongs to the holder of the shard lock.
template <typename Node, typename Table>
class Retirement {
 public:
  void retire(Node* node) { retired_nodes_.push_back(node); }
  void retire(Table* table) { retired_tables_.push_back(table); }

  // Grace periods. Never waits: a writer starts one when enough is retired and none is running, and
  // frees the previous one's garbage once no reader of the old parity is left.
  void reclaim(std::atomic<std::uint32_t>& parity, const ReaderCounts& readers, Garbage<Node, Table>& garbage) {
    for (int round = 0; round < 2; ++round) {
      if (!pending_nodes_.empty() || !pending_tables_.empty()) {
        if (!quiescent(readers, 1 - parity.load(std::memory_order_relaxed))) return;
        append(garbage.nodes, pending_nodes_);
        append(garbage.tables, pending_tables_);
      }
      if (retired_nodes_.size() < kRetireBatch && retired_tables_.empty()) return;
      pending_nodes_.swap(retired_nodes_);
      pending_tables_.swap(retired_tables_);
      parity.store(1 - parity.load(std::memory_order_relaxed), std::memory_order_seq_cst);
    }
  }

  // Frees everything retired or pending. Only when no other thread can use the cache any more.
  void destroy_all() noexcept {
    for (Node* node : retired_nodes_) delete node;
    for (Node* node : pending_nodes_) delete node;
    for (Table* t : retired_tables_) Table::destroy(t);
    for (Table* t : pending_tables_) Table::destroy(t);
    retired_nodes_.clear();
    pending_nodes_.clear();
    retired_tables_.clear();
    pending_tables_.clear();
  }

 private:
  static constexpr std::size_t kRetireBatch = 64;

  template <typename T>
  static void append(std::vector<T>& to, std::vector<T>& from) {
    if (to.empty()) {
      to.swap(from);
    } else {
      to.insert(to.end(), from.begin(), from.end());
      from.clear();
    }
  }

  std::vector<Node*> retired_nodes_;
  std::vector<Table*> retired_tables_;
  std::vector<Node*> pending_nodes_;
  std::vector<Table*> pending_tables_;
};

// RAII read section on one shard; an inactive one (a writer without a listener) does nothing. `Shard` has
// enter(stripe) -> parity and leave(stripe, parity).
template <typename Shard>
class ReadSection {
 public:
  ReadSection(Shard& shard, const StripeLease& stripe, bool active = true) noexcept
      : shard_(active ? &shard : nullptr), stripe_(stripe), parity_(active ? shard.enter(stripe) : 0) {}
  ~ReadSection() {
    if (shard_ != nullptr) shard_->leave(stripe_, parity_);
  }
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;

 private:
  Shard* shard_;
  const StripeLease& stripe_;
  std::uint32_t parity_;
};

}  // namespace riptide::performance::cache_detail
