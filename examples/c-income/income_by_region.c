/*
 * Example analysis in C: total income by region, with the manifest entry the disclosure checks
 * need. Shows that ringfence runs any language that targets WASI preview 1: it reads
 * /data/persons/schema.json to check the granted columns, reads /data/persons/data.csv (granted
 * with `csv = true`), and writes /export/income_by_region_c.csv and /export/manifest.json in
 * the SDK's manifest format (version 1).
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
    while (fgets(line, sizeof line, data)) {
        if (!field(line, region_at, region, sizeof region)) return fail("a row has too few fields");
        struct cell *c = cell_for(region);
        if (!c) return fail("too many regions");
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

    FILE *manifest = fopen("/export/manifest.json", "w");
    if (!manifest) return fail("cannot write /export/manifest.json");
    fprintf(manifest, "{\"version\": 1, \"outputs\": [{\"file\": \"income_by_region_c.csv\", \"kind\": \"magnitude\", ");
    fprintf(manifest, "\"description\": \"Total income by region (C example)\", \"variables\": [\"region\"], ");
    fprintf(manifest, "\"value\": \"income\", \"cells\": [");
    for (int i = 0; i < n_cells; i++) {
        struct cell *c = &cells[i];
        fprintf(manifest, "%s{\"key\": [", i ? ", " : "");
        json_string(manifest, c->name);
        fprintf(manifest, "], \"count\": %lld, \"sum\": %lld, \"top1\": %lld, \"top2\": %lld, ", c->count, c->sum, c->top1, c->top2);
        fprintf(manifest, "\"negatives\": %lld, \"zeros\": %lld, \"missing\": %lld}", c->negatives, c->zeros, c->missing);
    }
    fprintf(manifest, "]}]}\n");
    if (fclose(manifest) != 0) return fail("writing the manifest failed");
    printf("%d regions\n", n_cells);
    return 0;
}
