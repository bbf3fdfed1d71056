// Internal to the trace library: the line-level parser and formatter that Reader, Writer and
// the public parse()/format() share. Works on views and caller-owned buffers so that the
// streaming paths do not allocate per record.
#pragma once
#include <string>
#include <string_view>

#include "traces/trace.h"

namespace iommusim::trace::detail {

// Longest line the reader accepts; longer lines are reported and skipped without being held.
constexpr size_t kMaxLine = 64 * 1024;

// Parses one record line (no newline; trailing blanks and CR allowed). On failure returns
// false and, if `why` is given, says what was expected. Allocates only on failure.
bool parse_line(std::string_view line, Record& r, std::string* why);

// True if `r` can be written as a line the parser reads back to the same record.
bool representable(const Record& r, std::string* why);

// Appends the line of `r` (without newline). `r` must be representable.
void append_line(std::string& out, const Record& r);

// `s` quoted for an error message: at most a few dozen characters, bytes outside printable
// ASCII as \xNN, so binary garbage cannot mangle a terminal or a log.
std::string quoted(std::string_view s);

}  // namespace iommusim::trace::detail
