// The iommusim command-line verbs. Each returns a process exit code; bad input prints a
// message naming the option and what was expected (exit 2).
#pragma once
#include <string>
#include <vector>

namespace iommusim::cli {

int demo(const std::vector<std::string>& args);
int lookup(const std::vector<std::string>& args);
int run(const std::vector<std::string>& args);
int params(const std::vector<std::string>& args);
int replay(const std::vector<std::string>& args);
int import(const std::vector<std::string>& args);

// "0x1000", "4096", "4k", "2M", "1G" -> value; throws std::invalid_argument naming `what`.
uint64_t parse_number(const std::string& text, const std::string& what);
// "BB:DD.F" -> RID; throws std::invalid_argument.
uint16_t parse_bdf(const std::string& text);

}  // namespace iommusim::cli
