// \brief Status and Result<T>: the one error model of mbxmerge.
//
// Every fallible function returns Status or Result<T>; nothing throws across a
// module boundary (adapters around throwing libraries convert). A Status names
// what went wrong and where: "mbox 'a.mbox' message 12 (offset 4096): ...".
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mbx {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // bad usage or configuration (exit status 2)
    kNotFound,
    kCorruption,   // input that cannot be parsed as what it claims to be
    kIOError,      // the operating system said no
    kUnsupported,  // valid input we do not handle (yet)
    kBusy,         // locked by another process
    kAborted,      // cancelled by the user or a fatal sibling error
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  // An I/O error with errno's text appended: "open 'x': No such file or directory".
  static Status FromErrno(std::string_view what, int err);
  static Status Unsupported(std::string msg) { return Status(Code::kUnsupported, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status Aborted(std::string msg) { return Status(Code::kAborted, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corruption: <message>" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` and ": ".
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or an error. REQUIRES: !status.ok() when constructed from a Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mbx

#define MBX_CONCAT_INNER_(a, b) a##b
#define MBX_CONCAT_(a, b) MBX_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define MBX_RETURN_IF_ERROR(expr)        \
  do {                                   \
    ::mbx::Status mbx_status_ = (expr);  \
    if (!mbx_status_.ok()) return mbx_status_; \
  } while (0)

// `MBX_ASSIGN_OR_RETURN(auto x, FnReturningResult());`
#define MBX_ASSIGN_OR_RETURN(lhs, expr) MBX_ASSIGN_OR_RETURN_IMPL_(MBX_CONCAT_(mbx_r_, __LINE__), lhs, expr)
#define MBX_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
