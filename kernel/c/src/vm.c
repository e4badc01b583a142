// vm.c: physical pages and x86-64 four-level page tables.
// The kernel identity-maps guest memory (virtual = physical) with supervisor-only 4 KiB pages,
// leaving page 0 unmapped so that a NULL dereference faults. Every process gets its own PML4 and
// PDPT that share the kernel's page directory for the first GiB, and its own user mappings
// above it (user code at 1 GiB, the stack just below 2^47).
#include "kernel.h"

#define MAX_PAGES (1UL << 18)                    // 1 GiB of 4 KiB pages
static uint64_t free_map[MAX_PAGES / 64];        // bit set = page free
static uint64_t first_page, end_page;            // the allocator's range
static struct spinlock page_lock;
uint64_t* kernel_pagetable;
static uint64_t* kernel_pd;                      // maps the first GiB; shared by every address space

void page_allocator_init(uintptr_t start, uintptr_t end) {
    first_page = (start + PAGE_SIZE - 1) / PAGE_SIZE;
    end_page = end / PAGE_SIZE;
    for (uint64_t p = first_page; p < end_page; p++)
        bit_set(free_map, p);
}

// A zeroed page, or a panic: the kernel's memory is bounded by the guest's.
void* page_alloc(void) {
    spin_lock(&page_lock);
    for (uint64_t w = first_page / 64; w <= (end_page - 1) / 64; w++) {
        if (!free_map[w])
            continue;
        for (uint64_t p = w * 64; p < w * 64 + 64; p++) {
            if (p >= first_page && p < end_page && bit_test(free_map, p)) {
                bit_clear(free_map, p);
                spin_unlock(&page_lock);
                void* page = (void*) (p * PAGE_SIZE);
                memset(page, 0, PAGE_SIZE);
                return page;
            }
        }
    }
    panic("out of physical memory");
}

void page_free(void* page) {
    uint64_t p = (uintptr_t) page / PAGE_SIZE;
    if (p < first_page || p >= end_page || bit_test(free_map, p))
        panic("page_free: bad page %p", page);
    spin_lock(&page_lock);
    bit_set(free_map, p);
    spin_unlock(&page_lock);
}

// The entry for `va` in its page table, allocating missing tables on the way.
static uint64_t* walk(uint64_t* pml4, uintptr_t va, uint64_t perm) {
    uint64_t* table = pml4;
    for (int level = 3; level > 0; level--) {
        uint64_t* entry = &table[(va >> (12 + 9 * level)) & 511];
        if (!(*entry & PTE_P)) {
            uint64_t* next = page_alloc();
            *entry = (uintptr_t) next | PTE_P | PTE_W | (perm & PTE_U);
        } else if (perm & PTE_U) {
            *entry |= PTE_U;
        }
        table = (uint64_t*) (*entry & PTE_ADDR);
    }
    return &table[(va >> 12) & 511];
}

int vm_map(uint64_t* pml4, uintptr_t va, uintptr_t pa, uint64_t perm) {
    if ((va | pa) & (PAGE_SIZE - 1))
        return -1;
    *walk(pml4, va, perm) = pa | perm;
    return 0;
}

uint64_t vm_lookup(const uint64_t* pml4, uintptr_t va) {
    const uint64_t* table = pml4;
    uint64_t rights = PTE_U | PTE_W;
    for (int level = 3; level >= 0; level--) {
        uint64_t entry = table[(va >> (12 + 9 * level)) & 511];
        if (!(entry & PTE_P))
            return 0;
        rights &= entry;
        if (level == 0)
            return (entry & ~(PTE_U | PTE_W)) | rights;
        table = (const uint64_t*) (entry & PTE_ADDR);
    }
    return 0;
}

void kernel_pagetable_init(uintptr_t memory_size) {
    kernel_pagetable = page_alloc();
    for (uintptr_t pa = PAGE_SIZE; pa < memory_size; pa += PAGE_SIZE)
        vm_map(kernel_pagetable, pa, pa, PTE_P | PTE_W);
    uint64_t* pdpt = (uint64_t*) (kernel_pagetable[0] & PTE_ADDR);
    kernel_pd = (uint64_t*) (pdpt[0] & PTE_ADDR);
}

// A new address space: the kernel's first GiB (supervisor only), nothing else.
uint64_t* pagetable_new(void) {
    uint64_t* pml4 = page_alloc();
    uint64_t* pdpt = page_alloc();
    pml4[0] = (uintptr_t) pdpt | PTE_P | PTE_W | PTE_U;
    pdpt[0] = (uintptr_t) kernel_pd | PTE_P | PTE_W;
    return pml4;
}

// Frees a user table tree: every page it maps and every table, but not the shared kernel part.
static void table_free(uint64_t* table, int level) {
    for (int i = 0; i < 512; i++) {
        uint64_t entry = table[i];
        if (!(entry & PTE_P) || !(entry & PTE_U))
            continue;                             // absent, or the kernel's (supervisor) subtree
        void* next = (void*) (entry & PTE_ADDR);
        if (level > 0)
            table_free(next, level - 1);
        else
            page_free(next);
    }
    page_free(table);
}

// Frees an address space made by pagetable_new (it must not be the one in CR3).
void pagetable_free(uint64_t* pml4) {
    table_free(pml4, 3);
}
