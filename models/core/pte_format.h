// How one radix page-table format encodes its entries. Implemented per architecture in
// models/arch (VT-d second-level, VT-d first-level, sPAPR TCE) and used by the driver model
// to build tables. Walkers decode on their own: the oracle never trusts the encoder.
#pragma once
#include <cstdint>

#include "types.h"

namespace iommusim {

class PteFormat {
public:
    virtual ~PteFormat() = default;

    virtual const char* name() const = 0;
    // Levels are numbered from levels() (the root table) down to 1 (the last table).
    virtual unsigned levels() const = 0;
    // Entries in a table of `level` are 2^index_bits(level).
    virtual unsigned index_bits(unsigned level) const = 0;
    // The input-address bit where `level`'s index starts; a leaf at `level` maps 2^shift bytes.
    virtual unsigned level_shift(unsigned level) const = 0;
    virtual unsigned entry_size() const { return 8; }
    // Whether a leaf (page) may sit at `level` (large pages are hardware-optional).
    virtual bool leaf_allowed(unsigned level) const = 0;

    virtual uint64_t make_table(Addr table_pa, unsigned level) const = 0;
    virtual uint64_t make_leaf(Addr pa, Perm perm, unsigned level) const = 0;

    virtual bool is_present(uint64_t entry, unsigned level) const = 0;
    virtual bool is_leaf(uint64_t entry, unsigned level) const = 0;
    virtual Addr address(uint64_t entry, unsigned level) const = 0;  // next table or page
    virtual Perm leaf_perm(uint64_t entry, unsigned level) const = 0;

    Addr table_bytes(unsigned level) const { return Addr(entry_size()) << index_bits(level); }
};

}  // namespace iommusim
