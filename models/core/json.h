// JSON for the run outputs (stats.json, the timeline), written and read with nlohmann/json,
// so every writer escapes strings and formats numbers the same way. Only the .cpp files
// that write JSON (and tests that read it) include this header: it is large.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace iommusim {

// Objects keep insertion order: registration order is output order.
using Json = nlohmann::ordered_json;

// A JSON string holding `s`. Throws std::invalid_argument naming `what` (and the string,
// quoted) when `s` is not valid UTF-8: JSON cannot hold arbitrary bytes, and replacing or
// dropping them would change the name silently.
Json json_string(const std::string& s, std::string_view what);

// A JSON number holding `v`. Throws std::invalid_argument naming `what` when `v` is NaN or
// infinite: JSON has no such numbers (nlohmann would write null).
Json json_number(double v, const std::string& what);

// The text of `j`: `indent` < 0 on one line, otherwise pretty-printed with that many spaces.
// Strings were checked when they were made, so this does not throw for them.
std::string json_dump(const Json& j, int indent);

// `text` parsed as one JSON value; throws std::invalid_argument naming `what` and the
// library's reason (with the byte offset) when it is not.
Json json_parse(const std::string& text, const std::string& what);

}  // namespace iommusim
