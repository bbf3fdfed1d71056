// Quoting user input inside messages: input may be binary or megabytes long, and a message
// must neither write raw control bytes to a terminal nor echo a whole file back.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace iommusim {

// Longest input echoed by default; enough for any real key, value or trace line.
inline constexpr size_t kQuoteMax = 80;

// (Named quote, not quoted: for a std::string argument, ADL would pick std::quoted.)

// `s` in single quotes, printable ASCII kept; '\'' and '\\' are backslash-escaped, tab, CR
// and LF as \t \r \n, every other byte as \xNN. Input longer than `max` bytes is cut after
// `max` bytes and marked with its full length: 'abcd…' (10485760 bytes).
std::string quote(std::string_view s, size_t max = kQuoteMax);

// The same without the quotes and length marker, cut with a bare "…" (for text already
// inside other quoting).
std::string escape(std::string_view s, size_t max = kQuoteMax);

}  // namespace iommusim
