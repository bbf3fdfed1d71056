// `iommusim lookup` and `iommusim demo` per architecture: build an address space with the
// architecture's driver model, walk one address functionally and print every structure read
// next to the driver's intent. The options every architecture shares are fields; each
// architecture declares its own (VT-d's --mode, sPAPR's --ddw-page, ...) and reads them from
// `opts`. Bad values throw std::invalid_argument naming the option.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/expectation.h"
#include "core/sparse_memory.h"
#include "core/walker.h"

namespace iommusim {

struct LookupOption {
    std::string name, default_value, help;
    bool flag = false;      // a switch: its value is "1" when given, else ""
    bool repeated = false;  // may be given several times
};

struct LookupRequest {
    std::string rid = "00:02.0", pasid, iova, access = "read";
    bool priv = false;
    std::vector<std::string> maps;  // IOVA:PA:SIZE[:r|w|rw], mapped before the walk
    // The architecture's own options by name (every value of a repeated one).
    std::map<std::string, std::vector<std::string>> opts;

    // The value of option `name`: the last one given, or its default.
    const std::string& opt(const std::string& name) const;
};

namespace lookup {
struct MapSpec {
    Addr iova, pa, size;
    Perm perm;
};
// The configuration's integer syntax (0x, 0b, '_', K M G T as powers of 1024).
uint64_t number(const std::string& text, const std::string& what);
uint16_t bdf(const std::string& text);  // BB:DD.F
MapSpec map(const std::string& text, const char* option);
Access access(const std::string& text);
// `r` with the default of every option of `options` it does not give.
LookupRequest with_defaults(const LookupRequest& r, const std::vector<LookupOption>& options);
// Print the walk, the intent and whether they agree; 0 when they do.
int report(Walker& walker, SparseMemory& mem, const Requester& req, Addr iova, Access acc,
           const Expectation& e);
}  // namespace lookup

}  // namespace iommusim
