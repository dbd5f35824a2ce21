// \brief LDIF (RFC 2849) reading and change-record writing, for the directory
// of a mailbox store as exported by ldifde or ldapsearch.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace mbx::ldif {

struct Attribute {
  std::string name;   // as written, options included ("cn;lang-de")
  std::string value;  // decoded: base64 values are binary
  bool was_base64 = false;
};

struct Record {
  std::string dn;
  std::vector<Attribute> attributes;
  size_t line = 0;  // line of the dn, for errors

  // The first value of attribute `name` (case-insensitive, options ignored); nullptr if absent.
  const std::string* Get(std::string_view name) const;
  std::vector<const std::string*> GetAll(std::string_view name) const;
};

// Parses an LDIF content file: folded lines, "::" base64 values, comments,
// "version: 1", any attribute order, LF or CRLF. "attr:< URL" values are
// refused with an error naming the file and line. Change records
// ("changetype:") are refused too: a directory export has none.
Result<std::vector<Record>> Parse(std::string_view text, const std::string& file_for_errors);
Result<std::vector<Record>> ParseFile(const std::string& path);

// True when `value` can be written as "attr: value" (RFC 2849 SAFE-STRING).
bool IsSafeString(std::string_view value);

// "name: value" or "name:: base64", folded at 76 columns, with a final "\n".
std::string FormatAttribute(std::string_view name, std::string_view value);

// A modify change record replacing one attribute with one value.
std::string FormatReplace(std::string_view dn, std::string_view attribute, std::string_view value);

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace mbx::ldif
