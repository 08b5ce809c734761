/*
 * Example analysis in C: total income by region, with the manifest entry the disclosure checks
 * need. Shows that ringfence runs any language that targets WASI preview 1: it reads
 * /data/persons/schema.json to check the granted columns, reads /data/persons/data.csv (granted
 * with `csv = true`), and writes /export/income_by_region_c.csv, /export/manifest.json in the
 * SDK's manifest format (version 2), and /export/manifest.units: for each cell, the numbers of
 * the rows it was computed from (row 0 is data.csv's first data line, as it is data.arrow's
 * first row), as a Roaring bitmap in the portable serialization, so that the host can
 * recompute every number from the data instead of believing it.
 *
 * Build: clang --target=wasm32-wasi -O2 -o income_by_region_c.wasm income_by_region.c
 * (Debian: clang, lld, wasi-libc, libclang-rt-14-dev-wasm32; clang 14 names the preview-1
 * target wasm32-wasi.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REGIONS 256
#define MAX_LINE 4096

struct cell {
    char name[128];
    long long count, sum, top1, top2, negatives, zeros, missing;
    /* The rows of the cell, missing incomes included, in increasing order. */
    unsigned *rows;
    size_t n_rows, capacity;
};

static struct cell cells[MAX_REGIONS];
static int n_cells = 0;

static int fail(const char *what) {
    fprintf(stderr, "income_by_region_c: %s\n", what);
    return 1;
}

/* Copies CSV field `index` of `line` into `out` (handles double-quoted fields). */
static int field(const char *line, int index, char *out, size_t size) {
    int current = 0;
    const char *p = line;
    while (*p && *p != '\n' && *p != '\r') {
        size_t len = 0;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"') p++;
                if (current == index && len + 1 < size) out[len++] = *p;
                p++;
            }
            if (*p == '"') p++;
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') {
                if (current == index && len + 1 < size) out[len++] = *p;
                p++;
            }
        }
        if (current == index) {
            out[len] = '\0';
            return 1;
        }
        if (*p == ',') p++;
        current++;
    }
    return 0;
}

static int column_index(const char *header, const char *name) {
    char value[256];
    for (int i = 0; field(header, i, value, sizeof value); i++) {
        if (strcmp(value, name) == 0) return i;
    }
    return -1;
}

static struct cell *cell_for(const char *name) {
    for (int i = 0; i < n_cells; i++) {
        if (strcmp(cells[i].name, name) == 0) return &cells[i];
    }
    if (n_cells == MAX_REGIONS) return NULL;
    struct cell *c = &cells[n_cells++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

static int add_row(struct cell *c, unsigned row) {
    if (c->n_rows == c->capacity) {
        size_t capacity = c->capacity ? 2 * c->capacity : 64;
        unsigned *rows = realloc(c->rows, capacity * sizeof *rows);
        if (!rows) return 0;
        c->rows = rows;
        c->capacity = capacity;
    }
    c->rows[c->n_rows++] = row;
    return 1;
}

static void put16(FILE *out, unsigned v) {
    fputc(v & 0xff, out);
    fputc((v >> 8) & 0xff, out);
}

static void put32(FILE *out, unsigned long v) {
    put16(out, v & 0xffff);
    put16(out, (v >> 16) & 0xffff);
}

/*
 * Writes sorted `rows` as a Roaring bitmap in the portable format without run containers:
 * cookie 12346, the number of containers, each container's key (high 16 bits) and cardinality
 * minus one, each container's byte offset, then the containers: up to 4096 values as sorted
 * 16-bit values, more as a 65536-bit bitmap. Returns the bytes written.
 */
static long write_bitmap(FILE *out, const unsigned *rows, size_t n) {
    size_t containers = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || rows[i] >> 16 != rows[i - 1] >> 16) containers++;
    }
    put32(out, 12346);
    put32(out, containers);
    long offset = 8 + 8 * (long)containers, start = 0;
    for (int pass = 0; pass < 2; pass++) {
        start = offset;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && rows[j] >> 16 == rows[i] >> 16) j++;
            size_t card = j - i;
            if (pass == 0) {
                put16(out, rows[i] >> 16);
                put16(out, card - 1);
            } else {
                put32(out, start);
            }
            start += card <= 4096 ? 2 * (long)card : 8192;
            i = j;
        }
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rows[j] >> 16 == rows[i] >> 16) j++;
        if (j - i <= 4096) {
            for (size_t k = i; k < j; k++) put16(out, rows[k] & 0xffff);
        } else {
            static unsigned char bits[8192];
            memset(bits, 0, sizeof bits);
            for (size_t k = i; k < j; k++) bits[(rows[k] & 0xffff) >> 3] |= 1u << (rows[k] & 7);
            fwrite(bits, 1, sizeof bits, out);
        }
        i = j;
    }
    return start;
}

static void add(struct cell *c, long long value) {
    if (c->count == 0 || value > c->top1) {
        c->top2 = c->count == 0 ? 0 : c->top1;
        c->top1 = value;
    } else if (c->count == 1 || value > c->top2) {
        c->top2 = value;
    }
    c->count++;
    c->sum += value;
    if (value < 0) c->negatives++;
    if (value == 0) c->zeros++;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct cell *)a)->name, ((const struct cell *)b)->name);
}

/* Writes `text` as a JSON string. */
static void json_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

int main(void) {
    static char buffer[1 << 16];
    FILE *schema = fopen("/data/persons/schema.json", "r");
    if (!schema) return fail("cannot open /data/persons/schema.json");
    size_t got = fread(buffer, 1, sizeof buffer - 1, schema);
    buffer[got] = '\0';
    fclose(schema);
    if (!strstr(buffer, "\"region\"") || !strstr(buffer, "\"income\"")) {
        return fail("the grant lacks the region or income column");
    }

    FILE *data = fopen("/data/persons/data.csv", "r");
    if (!data) return fail("cannot open /data/persons/data.csv; the grant needs csv = true");
    static char line[MAX_LINE];
    if (!fgets(line, sizeof line, data)) return fail("data.csv is empty");
    int region_at = column_index(line, "region");
    int income_at = column_index(line, "income");
    if (region_at < 0 || income_at < 0) return fail("data.csv lacks region or income");

    char region[128], income[64];
    for (unsigned row = 0; fgets(line, sizeof line, data); row++) {
        if (!field(line, region_at, region, sizeof region)) return fail("a row has too few fields");
        struct cell *c = cell_for(region);
        if (!c) return fail("too many regions");
        if (!add_row(c, row)) return fail("out of memory");
        if (!field(line, income_at, income, sizeof income) || income[0] == '\0') {
            c->missing++;
            continue;
        }
        add(c, strtoll(income, NULL, 10));
    }
    fclose(data);
    qsort(cells, n_cells, sizeof cells[0], by_name);

    FILE *table = fopen("/export/income_by_region_c.csv", "w");
    if (!table) return fail("cannot write /export/income_by_region_c.csv");
    fprintf(table, "region,count,sum\n");
    for (int i = 0; i < n_cells; i++) fprintf(table, "%s,%lld,%lld\n", cells[i].name, cells[i].count, cells[i].sum);
    if (fclose(table) != 0) return fail("writing the table failed");

    FILE *units = fopen("/export/manifest.units", "wb");
    if (!units) return fail("cannot write /export/manifest.units");
    long units_length = 0;
    for (int i = 0; i < n_cells; i++) units_length += write_bitmap(units, cells[i].rows, cells[i].n_rows);
    if (fclose(units) != 0) return fail("writing the units failed");

    FILE *manifest = fopen("/export/manifest.json", "w");
    if (!manifest) return fail("cannot write /export/manifest.json");
    fprintf(manifest, "{\"version\": 2, \"outputs\": [{\"file\": \"income_by_region_c.csv\", \"kind\": \"magnitude\", ");
    fprintf(manifest, "\"description\": \"Total income by region (C example)\", \"variables\": [\"region\"], ");
    fprintf(manifest, "\"value\": \"income\", \"cells\": [");
    for (int i = 0; i < n_cells; i++) {
        struct cell *c = &cells[i];
        fprintf(manifest, "%s{\"key\": [", i ? ", " : "");
        json_string(manifest, c->name);
        fprintf(manifest, "], \"count\": %lld, \"sum\": %lld, \"top1\": %lld, \"top2\": %lld, ", c->count, c->sum, c->top1, c->top2);
        fprintf(manifest, "\"negatives\": %lld, \"zeros\": %lld, \"missing\": %lld}", c->negatives, c->zeros, c->missing);
    }
    fprintf(manifest, "], \"units\": {\"mount\": \"persons\", \"offset\": 0, \"length\": %ld}}]}\n", units_length);
    if (fclose(manifest) != 0) return fail("writing the manifest failed");
    printf("%d regions\n", n_cells);
    return 0;
}
