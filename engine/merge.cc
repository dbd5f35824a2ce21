#include "engine/merge.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/dedupe.h"
#include "engine/faultpoint.h"
#include "engine/fs.h"
#include "formats/mime/mime.h"

namespace mbx {

std::string_view ToString(MergeMode m) {
  switch (m) {
    case MergeMode::kMerge:
      return "merge";
    case MergeMode::kCopy:
      return "copy";
    case MergeMode::kArchive:
      return "archive";
    case MergeMode::kReplace:
      return "replace";
    case MergeMode::kReplaceNewer:
      return "replace-newer";
  }
  return "?";
}

std::string_view ToString(DedupeRule r) {
  switch (r) {
    case DedupeRule::kAuto:
      return "auto";
    case DedupeRule::kContent:
      return "content";
    case DedupeRule::kMessageId:
      return "message-id";
    case DedupeRule::kSearchKey:
      return "search-key";
    case DedupeRule::kNone:
      return "none";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One message on its way through the pipeline.
struct Work {
  uint64_t seq = 0;
  size_t source = 0;
  Message msg;
  size_t bytes = 0;
  // Filled by a worker:
  Rejection rejection = Rejection::kNone;
  std::optional<Status> error;  // could not be read or converted
  HeaderKey key{};
  Digest digest{};
};

// A bounded FIFO of work for the workers; Close() wakes everyone up. It also
// carries work the committer is done with back to the workers to be freed:
// a PST message's property bag is many small allocations, and freeing them
// on the committer, the pipeline's one serial stage, was a sixth of its time.
class WorkQueue {
 public:
  void Push(std::unique_ptr<Work> w) {
    std::lock_guard lock(mu_);
    q_.push_back(std::move(w));
    cv_.notify_one();
  }
  // Waits for work to do, or for finished work handed back by Dispose():
  // fills one of them and returns true; false once closed and drained.
  bool Pop(std::unique_ptr<Work>* work, std::vector<std::unique_ptr<Work>>* spent) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !q_.empty() || closed_ || !spent_.empty(); });
    if (!spent_.empty()) {
      spent->swap(spent_);
      return true;
    }
    if (q_.empty()) return false;
    *work = std::move(q_.front());
    q_.pop_front();
    return true;
  }
  // Takes the committer's finished work for a worker to free, unless the
  // workers are leaving (closed and drained): then it leaves it in `spent`.
  void Dispose(std::vector<std::unique_ptr<Work>>* spent) {
    std::lock_guard lock(mu_);
    if (closed_ && q_.empty()) return;
    std::move(spent->begin(), spent->end(), std::back_inserter(spent_));
    spent->clear();
    cv_.notify_one();
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Work>> q_;
  std::vector<std::unique_ptr<Work>> spent_;
  bool closed_ = false;
};

// Finished work, handed to the committer strictly in sequence order.
class ReorderBuffer {
 public:
  void Put(std::unique_ptr<Work> w) {
    std::lock_guard lock(mu_);
    uint64_t seq = w->seq;
    done_.emplace(seq, std::move(w));
    if (seq == next_) cv_.notify_all();
  }
  // Blocks until work `next_` is done; nullptr once the reader has finished
  // (SetTotal) and everything was taken.
  std::unique_ptr<Work> TakeNext() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_.count(next_) || (total_ && next_ >= *total_); });
    return TakeLocked();
  }
  // Work `next_` if it is done, else nullptr, without waiting.
  std::unique_ptr<Work> TryTakeNext() {
    std::lock_guard lock(mu_);
    return TakeLocked();
  }
  void SetTotal(uint64_t total) {
    std::lock_guard lock(mu_);
    total_ = total;
    cv_.notify_all();
  }

 private:
  std::unique_ptr<Work> TakeLocked() {
    auto it = done_.find(next_);
    if (it == done_.end()) return nullptr;
    auto w = std::move(it->second);
    done_.erase(it);
    ++next_;
    return w;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, std::unique_ptr<Work>> done_;
  uint64_t next_ = 0;
  std::optional<uint64_t> total_;
};

// Bytes between reader and committer. The reader waits while over budget, but
// one message is always let through so that a huge message cannot deadlock.
class InflightBudget {
 public:
  explicit InflightBudget(size_t limit) : limit_(limit) {}
  void Acquire(size_t bytes) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return used_ == 0 || used_ + bytes <= limit_; });
    used_ += bytes;
  }
  void Release(size_t bytes) {
    std::lock_guard lock(mu_);
    used_ -= bytes;
    cv_.notify_all();
  }
  // Counts bytes a message grew by on its way (a sink's converted form)
  // without waiting: a worker that waited could stall the committer it
  // waits for. The reader waits for them instead.
  void Charge(size_t bytes) {
    std::lock_guard lock(mu_);
    used_ += bytes;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t limit_;
  size_t used_ = 0;
};

// Maps source folder paths to target folder paths, reusing the spelling of a
// target folder that matches case-insensitively, and interns dedupe scopes.
class FolderMapper {
 public:
  FolderMapper(const MergeOptions& opt, const MailboxSink* sink)
      : opt_(opt), sink_(sink), single_(sink->SingleFolder()) {
    for (const auto& f : opt.existing_target_folders) Known(f);
  }

  std::string Map(const std::string& source_folder) {
    auto it = cache_.find(source_folder);
    if (it != cache_.end()) return it->second;
    std::string path;
    if (IsStoreFolder(source_folder)) {
      path = source_folder;  // a place in the store, not a mailbox folder
    } else if (!single_) {
      path = opt_.target_folder;
      if (!source_folder.empty()) {
        if (!path.empty()) path += '/';
        path += source_folder;
      }
      path = std::string(MailboxFolderOf(path));  // --target-folder /x is the mailbox folder x
      path = Known(path);
    }
    cache_.emplace(source_folder, path);
    return path;
  }

  // The dedupe scope of a folder as the target's ScanExisting() names it.
  uint32_t Scope(std::string_view stored_folder) {
    if (opt_.scope == DedupeScope::kMailbox || single_) return 0;
    std::string folded = mime::CaseFold(stored_folder);
    auto [it, inserted] = scopes_.try_emplace(folded, static_cast<uint32_t>(scopes_.size() + 1));
    return it->second;
  }

  // The dedupe scope of a target folder as Map() gives it: the folder the
  // sink stores it under, which a rerun's ScanExisting() reports.
  uint32_t TargetScope(const std::string& target_folder) {
    auto it = target_scope_.find(target_folder);
    if (it != target_scope_.end()) return it->second;
    uint32_t scope = Scope(sink_->StoredFolderName(target_folder));
    target_scope_.emplace(target_folder, scope);
    return scope;
  }

 private:
  // Returns the known spelling of `path`, registering it if new.
  std::string Known(const std::string& path) {
    std::string folded = mime::CaseFold(path);
    auto [it, inserted] = spelling_.try_emplace(folded, path);
    return it->second;
  }

  const MergeOptions& opt_;
  const MailboxSink* sink_;
  bool single_;
  std::unordered_map<std::string, std::string> cache_;
  std::unordered_map<std::string, uint32_t> target_scope_;
  std::unordered_map<std::string, std::string> spelling_;
  std::unordered_map<std::string, uint32_t> scopes_;
};

void Fingerprint(const Selector& selector, const MergeOptions& opt, const MailboxSink& sink,
                 Work* w) {
  if (w->msg.read_error) {
    w->error = *w->msg.read_error;
    return;
  }
  const bool dedupes = opt.mode != MergeMode::kCopy && opt.dedupe != DedupeRule::kNone;
  // A PST -> PST merge with nothing to select or dedupe never needs MIME: do
  // not render it (a fifth of such a merge's time went to it).
  if (!dedupes && !selector.selection().HasMessageCriteria() && !sink.NeedsMime(w->msg)) return;
  auto mime = w->msg.Mime();
  if (!mime.ok()) {
    w->error = mime.status();
    return;
  }
  w->rejection = selector.Check(w->msg, *mime);
  if (w->rejection != Rejection::kNone) return;
  if (dedupes) {
    std::string_view form = *mime;
    Result<std::string> target_form = std::string();
    if (opt.dedupe_form) {
      target_form = opt.dedupe_form(w->msg);
      if (target_form.ok()) form = *target_form;
    }
    w->key = ComputeHeaderKey(form, opt.dedupe);
    w->digest = ComputeDigest(form, opt.dedupe);
  }
}

class Pipeline {
 public:
  Pipeline(const std::vector<MailboxSource*>& sources, MailboxSink* sink, const MergeOptions& opt)
      : sources_(sources),
        sink_(sink),
        opt_(opt),
        selector_(opt.selection),
        index_(opt.dedupe),
        folders_(opt, sink),
        budget_(opt.max_inflight_bytes) {}

  RunReport Run();

 private:
  // Reads every source in order and hands each message to `emit`; returns how
  // many it handed over.
  uint64_t ReadAll(const std::function<void(std::unique_ptr<Work>)>& emit);
  void WorkerLoop();
  void CommitLoop();
  // Commits one finished message, in sequence order.
  void Deliver(Work& w);
  // Frees finished work and only then gives its bytes back to the reader:
  // released earlier, the reader's new messages could not reuse the memory
  // (a Maildir merge's peak grew from 100 to 135 MiB).
  void FreeSpent(std::vector<std::unique_ptr<Work>>* spent) {
    size_t bytes = 0;
    for (const auto& w : *spent) bytes += w->bytes;
    spent->clear();
    if (bytes != 0) budget_.Release(bytes);
  }
  void Commit(Work& w);
  // Ends the batch being staged: finishes the one before (whose flush ran
  // while this one was staged), then starts this one's; with `finish`, or on
  // a sink that cannot flush behind us, also waits for it.
  bool FlushBatch(bool finish = false);
  bool FinishInFlight();
  bool ReplacesTargetCopy(const Message& m, uint64_t existing);
  // Called by the reader and the committer.
  void Fail(const std::string& origin, const std::string& reason) {
    std::lock_guard lock(failures_mu_);
    report_.failures.push_back({origin, reason});
  }
  FolderCounts& Counts(size_t source, const std::string& source_folder,
                       const std::string& target_folder);
  Status ScanTarget();
  bool Stopped() const { return fatal_.load() || (opt_.cancel && opt_.cancel->load()); }

  const std::vector<MailboxSource*>& sources_;
  MailboxSink* sink_;
  const MergeOptions& opt_;
  Selector selector_;
  DedupeIndex index_;
  FolderMapper folders_;
  InflightBudget budget_;
  WorkQueue queue_;
  ReorderBuffer reorder_;
  RunReport report_;
  std::atomic<bool> fatal_{false};
  std::mutex failures_mu_;

  // Committer state: staged but not yet durable.
  // Archive mode: a source message that is durably in the target, removed
  // by unlinking its file or through its source's RemoveMessages().
  struct Archivable {
    FolderCounts* counts;
    std::string origin;
    std::string file;
    size_t source = 0;
    uint64_t token = 0;
  };
  struct Staged {
    FolderCounts* counts;
    std::string origin;
    size_t bytes;
    Archivable archive;  // archive mode: how to remove it from its source once durable
    bool replacing = false;
  };
  Archivable ArchiveHandle(const Work& w, FolderCounts* c) const {
    return {c, w.msg.origin, w.msg.backing_file, w.source, w.msg.source_token};
  }
  std::vector<Archivable> archivable_;
  std::vector<Archivable> pending_dup_archive_;  // duplicates seen since the last good Flush()
  void ArchiveSources();
  std::vector<Staged> staged_;
  size_t staged_bytes_ = 0;
  // A batch whose flush the sink has started but not yet finished.
  struct Batch {
    std::vector<Staged> staged;
    std::vector<Archivable> dup_archive;  // its pending_dup_archive_
    size_t index_mark = 0;                // index_.size() when it was started
  };
  std::optional<Batch> in_flight_;
  // Counts a batch that failed to be written (it and what depends on it).
  void FailBatch(std::vector<Staged>* staged, const Status& s);
  // A flush failed: the sink and the index go back to the last durable
  // batch, `batch` and everything staged since fail, and the run stops.
  void AbandonFrom(Batch* batch, const Status& s);
  uint64_t done_messages_ = 0;
  uint64_t done_bytes_ = 0;
};

FolderCounts& Pipeline::Counts(size_t source, const std::string& source_folder,
                               const std::string& target_folder) {
  std::string key = source_folder + " -> " + target_folder;
  return report_.sources[source].folders[key];
}

Status Pipeline::ScanTarget() {
  if (opt_.mode == MergeMode::kCopy || opt_.dedupe == DedupeRule::kNone) return Status::Ok();
  auto t0 = Clock::now();
  Status s = sink_->ScanExisting([&](const ExistingMessage& m) {
    uint32_t scope = folders_.Scope(m.folder);
    HeaderKey key = ComputeHeaderKey(m.head, opt_.dedupe);
    if (m.head_is_complete) {
      index_.AddExistingDigest(scope, key, ComputeDigest(m.head, opt_.dedupe), m.locator);
    } else {
      index_.AddExisting(scope, key, m.locator);
    }
    ++report_.existing_messages;
    return Status::Ok();
  });
  report_.seconds_scan_target = SecondsSince(t0);
  return s;
}

uint64_t Pipeline::ReadAll(const std::function<void(std::unique_ptr<Work>)>& emit) {
  uint64_t seq = 0;
  for (size_t i = 0; i < sources_.size() && !Stopped(); ++i) {
    MailboxSource* src = sources_[i];
    src->SetFolderFilter([this](std::string_view f) { return selector_.FolderSelected(f); });
    for (;;) {
      if (Stopped()) break;
      auto w = std::make_unique<Work>();
      auto more = src->Next(&w->msg);
      if (!more.ok()) {
        // The source is unusable from here on; the others still run.
        Fail(src->Describe(), more.status().ToString());
        break;
      }
      if (!*more) break;
      // Store paths are for associated items only; a mailbox folder that
      // merely starts with '/' (a hostile bundle's) is a mailbox folder.
      if (!w->msg.associated) w->msg.folder = std::string(MailboxFolderOf(w->msg.folder));
      if (!selector_.FolderSelected(w->msg.folder)) continue;  // a source without filter support
      w->seq = seq++;
      w->source = i;
      w->bytes = w->msg.ByteSize() + 256;
      emit(std::move(w));
    }
  }
  return seq;
}

void Pipeline::WorkerLoop() {
  // Bytes a message grew by on a worker, counted in the budget and released
  // with the message's own.
  auto grew = [this](Work* w, size_t bytes) {
    if (bytes == 0) return;  // most messages: no lock taken
    budget_.Charge(bytes);
    w->bytes += bytes;
  };
  std::unique_ptr<Work> w;
  std::vector<std::unique_ptr<Work>> spent;
  while (queue_.Pop(&w, &spent)) {
    if (!spent.empty()) {
      FreeSpent(&spent);
      continue;
    }
    if (!Stopped()) {
      Fingerprint(selector_, opt_, *sink_, w.get());
      // A native message's MIME rendering, made just now, is held beside
      // the native form: count it, or a PST source's real in-flight bytes
      // are twice the budget's (a 304 MB PST -> mbox peaked at 260 MiB).
      grew(w.get(), w->msg.RenderedBytes());
      // A duplicate is converted in vain (dedupe decides in the committer),
      // but on a worker, off the committer's path.
      if (!w->error && w->rejection == Rejection::kNone) {
        Status s = sink_->Convert(&w->msg);
        if (!s.ok()) w->error = s;
        if (w->msg.sink_form) grew(w.get(), w->msg.sink_form->SizeHint());
      }
    }
    reorder_.Put(std::move(w));
  }
}

void Pipeline::FailBatch(std::vector<Staged>* staged, const Status& s) {
  for (auto& st : *staged) {
    st.counts->failed++;
    Fail(st.origin, "not written: " + s.ToString());
  }
  staged->clear();
}

void Pipeline::AbandonFrom(Batch* batch, const Status& s) {
  sink_->Rollback();
  index_.Rollback();
  FailBatch(&batch->staged, s);
  FailBatch(&staged_, s);
  staged_bytes_ = 0;
  pending_dup_archive_.clear();  // the batches they may depend on were rolled back
  report_.fatal = "target unusable: " + s.ToString();
  fatal_ = true;
}

bool Pipeline::FinishInFlight() {
  if (!in_flight_) return true;
  Batch batch = std::move(*in_flight_);
  in_flight_.reset();
  Status s = sink_->FinishFlush();
  if (!s.ok()) {
    // The sink has dropped this batch and the one staged since; so do we.
    AbandonFrom(&batch, s);
    return false;
  }
  for (auto& a : batch.dup_archive) archivable_.push_back(std::move(a));
  index_.CommitThrough(batch.index_mark);
  for (auto& st : batch.staged) {
    st.counts->written++;
    if (st.replacing) st.counts->replaced++;
    st.counts->bytes_written += st.bytes;
    if (opt_.mode == MergeMode::kArchive) archivable_.push_back(std::move(st.archive));
  }
  MBX_CRASH_POINT("merge.batch.after-flush");
  return true;
}

bool Pipeline::FlushBatch(bool finish) {
  if (!FinishInFlight()) return false;
  if (staged_.empty()) {
    for (auto& a : pending_dup_archive_) archivable_.push_back(std::move(a));
    pending_dup_archive_.clear();
    return true;
  }
  MBX_CRASH_POINT("merge.batch.before-flush");
  Batch batch{std::move(staged_), std::move(pending_dup_archive_), index_.size()};
  staged_.clear();
  pending_dup_archive_.clear();
  staged_bytes_ = 0;
  Status s = sink_->StartFlush();
  if (!s.ok()) {
    AbandonFrom(&batch, s);
    return false;
  }
  in_flight_ = std::move(batch);
  // Without a write-behind thread the flush is done already: account for it now.
  if (finish || opt_.jobs <= 1) return FinishInFlight();
  return true;
}

void Pipeline::Commit(Work& w) {
  Message& m = w.msg;
  std::string target = folders_.Map(m.folder);
  FolderCounts& c = Counts(w.source, m.folder, target);
  c.read++;
  c.bytes_read += m.ByteSize();
  if (w.error) {
    c.failed++;
    Fail(m.origin, w.error->ToString());
    return;
  }
  if (w.rejection != Rejection::kNone) {
    c.not_selected++;
    return;
  }
  c.selected++;
  bool deduping = opt_.mode != MergeMode::kCopy && opt_.dedupe != DedupeRule::kNone;
  bool replacing = false;
  uint64_t match = DedupeIndex::kWrittenThisRun;
  if (deduping) {
    auto dup = index_.CheckAndInsert(
        folders_.TargetScope(target), w.key, w.digest,
        [this](uint64_t loc) { return sink_->ReadExisting(loc); }, &match);
    if (!dup.ok()) {
      // Cannot tell: write it rather than risk losing it.
      Fail(m.origin, "warning: could not compare with the target (" + dup.status().ToString() +
                         "); written anyway");
    } else if (*dup) {
      replacing = match != DedupeIndex::kWrittenThisRun && ReplacesTargetCopy(m, match);
      if (!replacing) {
        c.duplicates++;
        // Its equal is durably in the target already (or will be with this batch).
        if (opt_.mode == MergeMode::kArchive) pending_dup_archive_.push_back(ArchiveHandle(w, &c));
        return;
      }
    }
  }
  Status s = replacing ? sink_->StageReplacing(m, target, match) : sink_->Stage(m, target);
  if (!s.ok()) {
    if (deduping && !replacing) index_.UndoLast();
    c.failed++;
    Fail(m.origin, s.ToString());
    return;
  }
  if (replacing) index_.MarkLastMatchReplaced();
  staged_.push_back(Staged{&c, m.origin, m.ByteSize(),
                           opt_.mode == MergeMode::kArchive ? ArchiveHandle(w, &c) : Archivable{},
                           replacing});
  staged_bytes_ += m.ByteSize();
  MBX_CRASH_POINT("merge.commit.after-stage");
  if (staged_.size() >= opt_.batch_messages || staged_bytes_ >= opt_.batch_bytes) FlushBatch();
}

bool Pipeline::ReplacesTargetCopy(const Message& m, uint64_t existing) {
  if (opt_.mode == MergeMode::kReplace) return true;
  if (opt_.mode != MergeMode::kReplaceNewer) return false;
  // Unknown times never replace: keeping the target's copy loses nothing.
  UnixTime target_time = sink_->ExistingModified(existing);
  return m.container_modified != 0 && target_time != 0 && m.container_modified > target_time;
}

void Pipeline::Deliver(Work& w) {
  if (Stopped()) return;
  done_bytes_ += w.msg.ByteSize();
  Commit(w);
  ++done_messages_;
  if (opt_.progress) opt_.progress(done_messages_, done_bytes_);
}

void Pipeline::CommitLoop() {
  constexpr size_t kDisposeBatch = 32;
  std::vector<std::unique_ptr<Work>> spent;
  spent.reserve(kDisposeBatch);
  for (;;) {
    auto w = reorder_.TryTakeNext();
    if (!w) {
      // Before waiting, hand back what is finished: the reader may be
      // waiting for its bytes (always, with a budget of one message).
      queue_.Dispose(&spent);
      FreeSpent(&spent);
      w = reorder_.TakeNext();
      if (!w) break;
    }
    Deliver(*w);
    spent.push_back(std::move(w));
    if (spent.size() >= kDisposeBatch) {
      queue_.Dispose(&spent);
      FreeSpent(&spent);  // what the workers, gone, did not take
    }
  }
  if (!fatal_) FlushBatch(/*finish=*/true);
}

void Pipeline::ArchiveSources() {
  std::set<std::string> dirs;
  // Whole-file sources: their messages by token, removed in one rewrite each.
  std::map<size_t, std::map<uint64_t, const Archivable*>> by_source;
  for (const auto& a : archivable_) {
    if (a.file.empty()) {
      if (sources_[a.source]->CanRemoveMessages()) {
        by_source[a.source].emplace(a.token, &a);
      } else {
        Fail(a.origin, "archive: kept in the source (this source cannot remove single messages)");
      }
      continue;
    }
    if (::unlink(a.file.c_str()) != 0 && errno != ENOENT) {
      Fail(a.origin, "archive: cannot remove '" + a.file + "': " + std::strerror(errno));
      continue;
    }
    MBX_CRASH_POINT("merge.archive.after-unlink");
    a.counts->archived++;
    dirs.insert(fs::Dirname(a.file));
  }
  for (const auto& d : dirs) {
    Status s = fs::FsyncDir(d);
    if (!s.ok()) Fail(d, "archive: " + s.ToString());
  }
  for (auto& entry : by_source) {
    // Named references, not a structured binding: lambdas capture these
    // (clang before 16 cannot capture structured bindings).
    const auto& source = entry.first;
    auto& messages = entry.second;
    std::vector<uint64_t> tokens;
    tokens.reserve(messages.size());
    for (const auto& [token, _] : messages) tokens.push_back(token);
    std::set<uint64_t> kept;
    MBX_CRASH_POINT("merge.archive.before-source-rewrite");
    Status s = sources_[source]->RemoveMessages(tokens, [&](uint64_t token, std::string why) {
      auto it = messages.find(token);
      Fail(it == messages.end() ? sources_[source]->Describe() : it->second->origin,
           "archive: kept in the source: " + why);
      kept.insert(token);
    });
    if (!s.ok()) {
      // Nothing was removed from this source; everything stays where it was.
      Fail(sources_[source]->Describe(), "archive: the source was left as it was: " + s.ToString());
      continue;
    }
    for (const auto& [token, a] : messages) {
      if (!kept.count(token)) a->counts->archived++;
    }
  }
  archivable_.clear();
}

RunReport Pipeline::Run() {
  auto t0 = Clock::now();
  report_.command = "merge";
  report_.target = sink_->Describe();
  report_.mode = std::string(ToString(opt_.mode));
  report_.dedupe = opt_.mode == MergeMode::kCopy ? "none" : std::string(ToString(opt_.dedupe));
  report_.dry_run = opt_.dry_run;
  report_.single_folder_target = sink_->SingleFolder();
  report_.jobs = opt_.jobs;
  for (auto* s : sources_) report_.sources.push_back(SourceReport{s->Describe(), {}, {}});

  // Refuse up front what the formats cannot do, before anything is written.
  bool replace = opt_.mode == MergeMode::kReplace || opt_.mode == MergeMode::kReplaceNewer;
  if (replace && !opt_.dry_run && !sink_->CanReplace()) {
    report_.fatal =
        "--mode " + report_.mode + ": " + sink_->Describe() + " cannot replace messages";
  }
  for (auto* s : sources_) {
    if (opt_.mode == MergeMode::kArchive && !s->CanRemoveMessages()) {
      report_.fatal = "--mode archive: " + s->Describe() + " cannot have messages removed";
    }
  }
  if (!report_.fatal.empty()) return std::move(report_);
  if (opt_.mode == MergeMode::kArchive && !opt_.dry_run) {
    for (auto* s : sources_) s->WillRemoveMessages();
  }

  Status scan = ScanTarget();
  if (!scan.ok()) {
    report_.fatal = "cannot read the target's existing messages: " + scan.ToString();
    report_.seconds_total = SecondsSince(t0);
    return std::move(report_);
  }

  const int jobs = std::max(1, opt_.jobs);
  if (jobs > 1) {
    for (auto* s : sources_) s->SetReadThreads(jobs);
    sink_->SetWriteThreads(jobs);
  }
  if (jobs == 1) {
    // --jobs 1 is one CPU: this thread reads, converts, fingerprints and
    // commits each message in turn. Same order, same result as the pipeline.
    ReadAll([this](std::unique_ptr<Work> w) {
      if (!Stopped()) Fingerprint(selector_, opt_, *sink_, w.get());
      Deliver(*w);
    });
    if (!fatal_) FlushBatch(/*finish=*/true);
  } else {
    // The reader (this thread), `jobs` workers converting and fingerprinting,
    // and the committer, which alone touches the sink and the dedupe index.
    std::vector<std::thread> workers;
    workers.reserve(static_cast<size_t>(jobs));
    for (int i = 0; i < jobs; ++i) workers.emplace_back([this] { WorkerLoop(); });
    std::thread committer([this] { CommitLoop(); });
    uint64_t total = ReadAll([this](std::unique_ptr<Work> w) {
      budget_.Acquire(w->bytes);
      queue_.Push(std::move(w));
    });
    queue_.Close();
    reorder_.SetTotal(total);
    for (auto& t : workers) t.join();
    committer.join();
  }

  if (in_flight_) FinishInFlight();  // a run stopped before its last batch
  MBX_CRASH_POINT("merge.close.before");
  Status close = sink_->Close();
  if (!close.ok() && report_.fatal.empty())
    report_.fatal = "closing the target: " + close.ToString();
  // Only now is every counted message durable in the target.
  if (close.ok() && opt_.mode == MergeMode::kArchive && !opt_.dry_run) {
    MBX_CRASH_POINT("merge.archive.before");
    ArchiveSources();
  }
  if (opt_.cancel && opt_.cancel->load() && report_.fatal.empty()) {
    report_.fatal = "interrupted: everything counted as written is durable; run again to finish";
  }
  report_.seconds_total = SecondsSince(t0);
  return std::move(report_);
}

// --dry-run: counts what would be written, writes nothing.
class DryRunSink : public MailboxSink {
 public:
  DryRunSink(std::unique_ptr<MailboxSource> existing, std::string description, bool single)
      : existing_(std::move(existing)), description_(std::move(description)), single_(single) {}
  std::string Describe() const override { return description_; }
  bool SingleFolder() const override { return single_; }
  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    if (!existing_) return Status::Ok();
    Message m;
    for (;;) {
      auto more = existing_->Next(&m);
      if (!more.ok()) return more.status();
      if (!*more) return Status::Ok();
      if (m.read_error) continue;
      auto mime = m.Mime();
      if (!mime.ok()) continue;
      ExistingMessage e;
      e.folder = m.folder;
      e.head = *mime;
      e.head_is_complete = true;
      MBX_RETURN_IF_ERROR(fn(e));
    }
  }
  Result<std::string> ReadExisting(uint64_t) override {
    return Status::Unsupported("dry run keeps no message bytes");
  }
  Status Stage(const Message&, std::string_view) override { return Status::Ok(); }
  Status Flush() override { return Status::Ok(); }
  void Rollback() override {}
  Status Close() override { return Status::Ok(); }

 private:
  std::unique_ptr<MailboxSource> existing_;
  std::string description_;
  bool single_;
};

}  // namespace

RunReport RunMerge(const std::vector<MailboxSource*>& sources, MailboxSink* sink,
                   const MergeOptions& options) {
  Pipeline p(sources, sink, options);
  return p.Run();
}

std::unique_ptr<MailboxSink> NewDryRunSink(std::unique_ptr<MailboxSource> existing,
                                           std::string description, bool single_folder) {
  return std::make_unique<DryRunSink>(std::move(existing), std::move(description), single_folder);
}

}  // namespace mbx
