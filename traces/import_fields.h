// The tokenizer of the importers' line formats: numbers, `key value` / `key=value` fields,
// SECONDS.FRACTION timestamps.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace iommusim::trace::import {

// An unsigned number at the start of `s`: 0x-prefixed hex or decimal. Sets `used` to the
// characters consumed. nullopt if there is none or it overflows 64 bits.
std::optional<uint64_t> number(std::string_view s, size_t* used = nullptr);
std::optional<uint64_t> hex(std::string_view s, size_t* used = nullptr);  // without 0x

// The number after the word `key` in `args`: "key 0x10", "key=0x10" and "key = 5" all match,
// `key` must start a word (so "addr" does not match inside "dbs_addr"). Later occurrences are
// tried when the first is not followed by a number ("config controller config=0x1").
std::optional<uint64_t> field(std::string_view args, std::string_view key);
// The same for values printed in hex without a prefix (Linux dma:* events print "%llx").
std::optional<uint64_t> hex_field(std::string_view args, std::string_view key);
// Where the value of `key` starts in `args` (after the blanks or '='), or npos.
size_t value_pos(std::string_view args, std::string_view key);

// Seconds with a fraction ("1795289230.276783", "1.379440") as integer nanoseconds; exact for
// up to 9 fractional digits, later digits truncated. nullopt unless digits '.' digits.
std::optional<uint64_t> seconds_ns(std::string_view s);

// `s` without leading and trailing blanks.
std::string_view trim(std::string_view s);

}  // namespace iommusim::trace::import
