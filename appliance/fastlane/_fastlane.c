/* The fast lane: parse -> detect -> attribute for `harvestwatch analyze`, in one C loop.
 *
 * This is a compiled copy of three Python stages, kept for one reason: speed on large logs.
 * The Python stages stay the reference and the live daemon's implementation:
 *   parse      appliance/parse/netfilter.py  NetfilterParser (chunk pattern, _packet, _cut_short)
 *              appliance/parse/clock.py      LineClock.syslog_with_uptime (the boot anchor)
 *   detect     appliance/detect/scans.py     ScanDetector.feed / _expire
 *   attribute  appliance/attribute/triggers.py TriggerHistory.feed / candidates / _expire
 * tests/test_fastlane.py runs both lanes over the same logs (synthetic, psad's, the seed's,
 * hypothesis-made) and requires the same stored evidence, report and skip counts.
 *
 * Division of work. The C lane takes the lines it is sure about (the common layouts) and hands
 * every other line to the Python parser, so odd wrappers and garbage keep one implementation.
 * Calendar work (syslog year and zone, ISO dates) is asked of the Python LineClock, once per
 * distinct syslog minute (second with --year). Judging a finished episode (is it dense enough, the Scan it makes) is
 * Python too: C only hands over the episodes that have enough ports or hosts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

enum { DIR_IN = 0, DIR_OUT = 1, DIR_FWD = 2 };
enum { SKIP_NOT_NETFILTER, SKIP_TRUNCATED, SKIP_BAD_ADDRESS, SKIP_BAD_TIMESTAMP, SKIP_BAD_PROTOCOL, SKIP_KINDS };
static const char *SKIP_NAMES[SKIP_KINDS] = {"not-netfilter", "truncated", "bad-address", "bad-timestamp",
                                             "bad-protocol"};
#define NO_PORT (-1)
#define MAX_PROTOS 512           /* protocol names: the few the kernel prints, numbers up to 255 */
#define ADDRESS_CACHE_LIMIT 8192 /* as the Python parser's cache */
#define RAW_ADDRESS_MAX 48
#define PORT_TUPLES 4096         /* (proto, port) tuples kept for reuse */

/* ------------------------------------------------------------------------------------------ */
/* Open-addressing hash index: slots hold item numbers (+1; 0 = empty). Items live elsewhere.  */
typedef struct {
    uint32_t *slots;
    size_t mask;
} Index;

static int index_init(Index *ix, size_t want) {
    size_t n = 8;
    while (n < want * 2) n <<= 1;
    ix->slots = PyMem_Calloc(n, sizeof(uint32_t));
    if (!ix->slots) { PyErr_NoMemory(); return -1; }
    ix->mask = n - 1;
    return 0;
}
static void index_free(Index *ix) { PyMem_Free(ix->slots); ix->slots = NULL; ix->mask = 0; }

/* `block` resized to `count` items of `size` bytes; NULL, with MemoryError set, if it cannot be
 * (the block is then left as it was). */
static void *grown(void *block, size_t count, size_t size) {
    void *bigger = PyMem_Realloc(block, count * size);
    if (!bigger) PyErr_NoMemory();
    return bigger;
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static inline int same_str(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    return PyUnicode_GET_LENGTH(a) == PyUnicode_GET_LENGTH(b) && PyUnicode_Compare(a, b) == 0;
}
static inline uint64_t str_hash(PyObject *s) { return (uint64_t)PyObject_Hash(s); }

/* ------------------------------------------------------------------------------------------ */
/* Port maps: (protocol, port) keys in first-seen order with their first-seen time.           */
typedef struct {
    uint64_t *keys;
    double *first;
    size_t n, cap;
    Index ix;
} PortMap;

static inline uint64_t port_key(int proto, long port) { return ((uint64_t)(proto + 1) << 32) | (uint32_t)(port + 1); }

static int portmap_init(PortMap *m) {
    m->n = 0; m->cap = 8;
    m->keys = PyMem_Malloc(m->cap * sizeof(uint64_t));
    m->first = PyMem_Malloc(m->cap * sizeof(double));
    if (!m->keys || !m->first) { PyErr_NoMemory(); return -1; }
    return index_init(&m->ix, m->cap);
}
static void portmap_free(PortMap *m) {
    PyMem_Free(m->keys); PyMem_Free(m->first); index_free(&m->ix);
    m->keys = NULL; m->first = NULL; m->n = m->cap = 0;
}
static int portmap_reindex(PortMap *m) {
    index_free(&m->ix);
    if (index_init(&m->ix, m->cap) < 0) return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t s = mix64(m->keys[i]) & m->ix.mask;
        while (m->ix.slots[s]) s = (s + 1) & m->ix.mask;
        m->ix.slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}
/* Adds key with time ts unless present. Returns 1 if added, 0 if known, -1 on error. */
static int portmap_add(PortMap *m, uint64_t key, double ts) {
    size_t s = mix64(key) & m->ix.mask;
    for (uint32_t at; (at = m->ix.slots[s]); s = (s + 1) & m->ix.mask)
        if (m->keys[at - 1] == key) return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap * 2;
        uint64_t *k = grown(m->keys, cap, sizeof *k);
        if (!k) return -1;
        m->keys = k;
        double *f = grown(m->first, cap, sizeof *f);
        if (!f) return -1;
        m->first = f;
        m->cap = cap;
        m->keys[m->n] = key; m->first[m->n] = ts; m->n++;
        return portmap_reindex(m) < 0 ? -1 : 1;
    }
    m->keys[m->n] = key; m->first[m->n] = ts;
    m->ix.slots[s] = (uint32_t)(++m->n);
    return 1;
}

/* Host maps (sweeps): destination address -> first-seen time, in first-seen order. */
typedef struct {
    PyObject **keys;
    double *first;
    size_t n, cap;
    Index ix;
} HostMap;

static int hostmap_init(HostMap *m) {
    m->n = 0; m->cap = 8;
    m->keys = PyMem_Malloc(m->cap * sizeof(PyObject *));
    m->first = PyMem_Malloc(m->cap * sizeof(double));
    if (!m->keys || !m->first) { PyErr_NoMemory(); return -1; }
    return index_init(&m->ix, m->cap);
}
static void hostmap_free(HostMap *m) {
    for (size_t i = 0; i < m->n; i++) Py_DECREF(m->keys[i]);
    PyMem_Free(m->keys); PyMem_Free(m->first); index_free(&m->ix);
    m->keys = NULL; m->first = NULL; m->n = m->cap = 0;
}
static int hostmap_add(HostMap *m, PyObject *host, double ts) {
    uint64_t h = mix64(str_hash(host));
    size_t s = h & m->ix.mask;
    for (uint32_t at; (at = m->ix.slots[s]); s = (s + 1) & m->ix.mask)
        if (same_str(m->keys[at - 1], host)) return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap * 2;
        PyObject **k = grown(m->keys, cap, sizeof *k);
        if (!k) return -1;
        m->keys = k;
        double *f = grown(m->first, cap, sizeof *f);
        if (!f) return -1;
        m->first = f;
        m->cap = cap;
        Py_INCREF(host);
        m->keys[m->n] = host; m->first[m->n] = ts; m->n++;
        index_free(&m->ix);
        if (index_init(&m->ix, m->cap) < 0) return -1;
        for (size_t i = 0; i < m->n; i++) {
            size_t t = mix64(str_hash(m->keys[i])) & m->ix.mask;
            while (m->ix.slots[t]) t = (t + 1) & m->ix.mask;
            m->ix.slots[t] = (uint32_t)(i + 1);
        }
        return 1;
    }
    Py_INCREF(host);
    m->keys[m->n] = host; m->first[m->n] = ts;
    m->ix.slots[s] = (uint32_t)(++m->n);
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Episodes: one per (source, destination) pair, or per source for sweeps (dst NULL). They are
 * kept in a list in the order a Python dict would iterate them: a key keeps its place when its
 * episode is replaced and goes to the end when it is removed and comes back. */
typedef struct Episode {
    struct Episode *prev, *next;
    uint64_t hash;
    PyObject *src, *dst;
    double start, last;
    long packets;
    PortMap seen;       /* pairs: (proto, port) -> first seen; sweeps: the ports used */
    HostMap hosts;      /* sweeps only */
    PyObject *candidates;
} Episode;

typedef struct {
    Episode *head, *tail;
    Episode **items;    /* for the index; rebuilt on expiry */
    size_t n, cap;
    Index ix;
} EpisodeTable;

/* Trigger history: what one address sent, oldest first, at most `limit` entries. */
typedef struct {
    double ts;
    PyObject *dst;
    int sport, dport;
    int proto;
} Sent;

typedef struct {
    uint64_t hash;
    PyObject *src;
    Sent *ring;
    int head, count, cap;
} History;

typedef struct {
    History **items;
    size_t n, cap;
    Index ix;
} HistoryTable;

typedef struct {
    uint64_t hash;
    PyObject *src, *dst;
    int proto, dport;
    double first, last;
} Contact;

typedef struct {
    Contact *items;
    size_t n, cap;
    Index ix;
} ContactTable;

typedef struct {
    char raw[RAW_ADDRESS_MAX];
    int len;
    PyObject *value;    /* NULL: not an address */
} CachedAddress;

typedef struct {
    double ts;
    PyObject *src, *dst;   /* strong references */
    int proto, sport, dport;
    int direction;
} Record;

typedef struct {
    PyObject_HEAD
    /* settings */
    long min_ports, min_hosts, history_limit;
    double window, lookback, retention, anchor_slack;
    PyObject *close_pair, *close_sweep, *make_candidate, *bad_timestamp;
    /* the stream being read */
    PyObject *clock, *fallback, *syslog_method, *iso_method;
    double boot_time, anchor;
    int have_anchor;
    char last_stamp[15];
    int last_stamp_state;  /* 0 unknown, 1 good (last_wall), 2 bad */
    int by_minute;         /* the clock may be asked per minute (see wall_of_stamp) */
    double last_wall;
    /* parse */
    PyObject *protos[MAX_PROTOS];
    int nprotos, ranked;
    int proto_rank[MAX_PROTOS], proto_of_rank[MAX_PROTOS];
    uint64_t port_keys[PORT_TUPLES];
    PyObject *port_tuples[PORT_TUPLES];
    CachedAddress *addresses;
    CachedAddress recent[2];   /* the last source and destination */
    size_t naddresses;
    Index address_ix;
    Record *records;
    size_t nrecords, records_cap;
    long long lines, packets;
    long long skips[SKIP_KINDS];
    /* detect */
    EpisodeTable pairs, sources;
    double next_expiry;
    Episode *last_pair, *last_sweep;
    /* attribute */
    HistoryTable history;
    ContactTable contacts;
    double history_next_expiry;
} Pipeline;

/* ------------------------------------------------------------------------------------------ */
static void episode_free(Episode *e);

static Episode *episode_new(PyObject *src, PyObject *dst, uint64_t hash, int sweep) {
    Episode *e = PyMem_Calloc(1, sizeof(Episode));
    if (!e) { PyErr_NoMemory(); return NULL; }
    e->hash = hash;
    Py_INCREF(src); e->src = src;
    Py_XINCREF(dst); e->dst = dst;
    if (portmap_init(&e->seen) < 0 || (sweep && hostmap_init(&e->hosts) < 0)) {
        episode_free(e);
        return NULL;
    }
    return e;
}
static void episode_reset(Episode *e, double ts) {
    e->start = e->last = ts;
    e->packets = 0;
    e->seen.n = 0;
    memset(e->seen.ix.slots, 0, (e->seen.ix.mask + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < e->hosts.n; i++) Py_DECREF(e->hosts.keys[i]);
    e->hosts.n = 0;
    if (e->hosts.ix.slots) memset(e->hosts.ix.slots, 0, (e->hosts.ix.mask + 1) * sizeof(uint32_t));
    Py_CLEAR(e->candidates);
}
static void episode_free(Episode *e) {
    Py_DECREF(e->src); Py_XDECREF(e->dst); Py_XDECREF(e->candidates);
    portmap_free(&e->seen);
    if (e->hosts.keys) hostmap_free(&e->hosts);
    PyMem_Free(e);
}

static inline uint64_t pair_hash(PyObject *src, PyObject *dst) {
    return mix64(str_hash(src) * 31 + (dst ? str_hash(dst) : 0));
}

static int table_reindex(EpisodeTable *t) {
    size_t n = 0;
    for (Episode *e = t->head; e; e = e->next) n++;
    if ((n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < (n + 1) * 2) cap *= 2;
        Episode **items = grown(t->items, cap, sizeof *items);
        if (!items) return -1;
        t->items = items; t->cap = cap;
    }
    index_free(&t->ix);
    if (index_init(&t->ix, t->cap) < 0) return -1;
    t->n = 0;
    for (Episode *e = t->head; e; e = e->next) {
        size_t s = e->hash & t->ix.mask;
        while (t->ix.slots[s]) s = (s + 1) & t->ix.mask;
        t->items[t->n] = e;
        t->ix.slots[s] = (uint32_t)(++t->n);
    }
    return 0;
}

static Episode *table_find(EpisodeTable *t, uint64_t hash, PyObject *src, PyObject *dst, size_t *slot) {
    size_t s = hash & t->ix.mask;
    for (uint32_t at; (at = t->ix.slots[s]); s = (s + 1) & t->ix.mask) {
        Episode *e = t->items[at - 1];
        if (e && e->hash == hash && same_str(e->src, src) && (!dst || same_str(e->dst, dst))) return e;
    }
    *slot = s;
    return NULL;
}

static int table_append(EpisodeTable *t, Episode *e, size_t slot) {
    e->prev = t->tail; e->next = NULL;
    if (t->tail) t->tail->next = e; else t->head = e;
    t->tail = e;
    if (t->n + 1 >= t->cap || (t->n + 1) * 2 > t->ix.mask + 1) return table_reindex(t);
    t->items[t->n] = e;
    t->ix.slots[slot] = (uint32_t)(++t->n);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* (proto, port) tuples, shared: scanners probe the same few hundred ports again and again. */
static PyObject *port_tuple(Pipeline *p, uint64_t key) {
    size_t slot = mix64(key) & (PORT_TUPLES - 1);
    int room = 0;  /* an empty slot within reach: keep the new tuple there */
    for (int probe = 0; probe < 8; probe++, slot = (slot + 1) & (PORT_TUPLES - 1)) {
        if (p->port_keys[slot] == key) return Py_NewRef(p->port_tuples[slot]);
        if (!p->port_keys[slot]) { room = 1; break; }
    }
    int proto = (int)(key >> 32) - 1;
    long port = (long)(uint32_t)key - 1;
    PyObject *number = port == NO_PORT ? Py_NewRef(Py_None) : PyLong_FromLong(port);
    if (!number) return NULL;
    PyObject *t = PyTuple_Pack(2, p->protos[proto], number);
    Py_DECREF(number);
    if (t && room) {
        p->port_keys[slot] = key;
        p->port_tuples[slot] = Py_NewRef(t);
    }
    return t;
}


/* The first-seen times, in first-seen order. */
static PyObject *time_list(const double *times, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *f = PyFloat_FromDouble(times[i]);
        if (!f) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, i, f);
    }
    return list;
}

/* Ports are handed over in the order Python sorts them (protocol name, then port, no port
 * first), which makes that sort a single pass. */
static void rank_protocols(Pipeline *p) {
    if (p->ranked == p->nprotos) return;
    for (int i = 0; i < p->nprotos; i++) {
        int rank = 0;
        for (int j = 0; j < p->nprotos; j++)
            if (PyUnicode_Compare(p->protos[j], p->protos[i]) < 0) rank++;
        p->proto_rank[i] = rank;
        p->proto_of_rank[rank] = i;
    }
    p->ranked = p->nprotos;
}

/* Shell sort (Ciura's gaps): small arrays mostly, a full-range scan's 65,536 ports at worst. */
static void sort_u64(uint64_t *a, size_t n) {
    static const size_t GAPS[] = {8929, 3905, 1750, 701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof GAPS / sizeof GAPS[0]; g++) {
        size_t gap = GAPS[g];
        for (size_t i = gap; i < n; i++) {
            uint64_t v = a[i];
            size_t j = i;
            for (; j >= gap && a[j - gap] > v; j -= gap) a[j] = a[j - gap];
            a[j] = v;
        }
    }
}

static PyObject *sorted_port_list(Pipeline *p, const PortMap *m) {
    uint64_t *order = PyMem_Malloc((m->n ? m->n : 1) * sizeof(uint64_t));
    if (!order) return PyErr_NoMemory();
    rank_protocols(p);
    for (size_t i = 0; i < m->n; i++) {
        int proto = (int)(m->keys[i] >> 32) - 1;
        order[i] = ((uint64_t)p->proto_rank[proto] << 32) | (uint32_t)m->keys[i];
    }
    sort_u64(order, m->n);
    PyObject *list = PyList_New((Py_ssize_t)m->n);
    for (size_t i = 0; list && i < m->n; i++) {
        uint64_t key = ((uint64_t)(p->proto_of_rank[order[i] >> 32] + 1) << 32) | (uint32_t)order[i];
        PyObject *port = port_tuple(p, key);
        if (!port) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, i, port);
    }
    PyMem_Free(order);
    return list;
}

/* Hand a finished episode to Python if it could be a scan (enough distinct ports or hosts):
 * close_pair(src, dst, start, last, packets, ports, first_seen_times, candidates) or
 * close_sweep(src, start, last, packets, {host: first_seen}, ports). */
static int close_episode(Pipeline *p, Episode *e) {
    PyObject *result;
    if (!e->dst) {
        if ((long)e->hosts.n < p->min_hosts) return 0;
        PyObject *hosts = PyDict_New();
        for (size_t i = 0; hosts && i < e->hosts.n; i++) {
            PyObject *first = PyFloat_FromDouble(e->hosts.first[i]);
            if (!first || PyDict_SetItem(hosts, e->hosts.keys[i], first) < 0) Py_CLEAR(hosts);
            Py_XDECREF(first);
        }
        PyObject *ports = hosts ? sorted_port_list(p, &e->seen) : NULL;
        if (!ports) { Py_XDECREF(hosts); return -1; }
        result = PyObject_CallFunction(p->close_sweep, "OddlNN", e->src, e->start, e->last, e->packets,
                                       hosts, ports);
    } else {
        if ((long)e->seen.n < p->min_ports) return 0;
        PyObject *ports = sorted_port_list(p, &e->seen);
        PyObject *times = ports ? time_list(e->seen.first, e->seen.n) : NULL;
        if (!times) { Py_XDECREF(ports); return -1; }
        result = PyObject_CallFunction(p->close_pair, "OOddlNNO", e->src, e->dst, e->start, e->last, e->packets,
                                       ports, times, e->candidates ? e->candidates : Py_None);
    }
    if (!result) return -1;
    Py_DECREF(result);
    return 0;
}

/* Close and drop every episode last seen before `horizon` (ScanDetector._expire). */
static int expire_table(Pipeline *p, EpisodeTable *t, double horizon) {
    int removed = 0;
    Episode *e = t->head;
    while (e) {
        Episode *next = e->next;
        if (e->last < horizon) {
            if (e->prev) e->prev->next = e->next; else t->head = e->next;
            if (e->next) e->next->prev = e->prev; else t->tail = e->prev;
            if (p->last_pair == e) p->last_pair = NULL;
            if (p->last_sweep == e) p->last_sweep = NULL;
            int rc = close_episode(p, e);
            episode_free(e);
            removed = 1;
            if (rc < 0) { table_reindex(t); return -1; }
        }
        e = next;
    }
    return removed ? table_reindex(t) : 0;
}

static int detector_expire(Pipeline *p, double now) {
    double horizon = now - p->window;
    if (expire_table(p, &p->pairs, horizon) < 0 || expire_table(p, &p->sources, horizon) < 0) return -1;
    p->next_expiry = now + p->window;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
static History *history_find(HistoryTable *t, uint64_t hash, PyObject *src, size_t *slot) {
    size_t s = hash & t->ix.mask;
    for (uint32_t at; (at = t->ix.slots[s]); s = (s + 1) & t->ix.mask) {
        History *h = t->items[at - 1];
        if (h->hash == hash && same_str(h->src, src)) return h;
    }
    *slot = s;
    return NULL;
}

static int history_reindex(HistoryTable *t) {
    index_free(&t->ix);
    if (index_init(&t->ix, t->cap) < 0) return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = t->items[i]->hash & t->ix.mask;
        while (t->ix.slots[s]) s = (s + 1) & t->ix.mask;
        t->ix.slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

static void history_free(History *h) {
    for (int i = 0; i < h->count; i++) Py_DECREF(h->ring[(h->head + i) % h->cap].dst);
    Py_DECREF(h->src);
    PyMem_Free(h->ring);
    PyMem_Free(h);
}

/* TriggerHistory._expire: drop packets older than the retention, then empty addresses. */
static int history_expire(Pipeline *p, double now) {
    HistoryTable *t = &p->history;
    double horizon = now - p->retention;
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++) {
        History *h = t->items[i];
        while (h->count && h->ring[h->head].ts < horizon) {
            Py_DECREF(h->ring[h->head].dst);
            h->head = (h->head + 1) % h->cap;
            h->count--;
        }
        if (h->count) t->items[kept++] = h; else history_free(h);
    }
    t->n = kept;
    p->history_next_expiry = now + (p->lookback < 60.0 ? p->lookback : 60.0);
    return history_reindex(t);
}

static int history_add(Pipeline *p, const Record *r) {
    HistoryTable *t = &p->history;
    uint64_t hash = mix64(str_hash(r->src));
    size_t slot;
    History *h = history_find(t, hash, r->src, &slot);
    if (!h) {
        h = PyMem_Calloc(1, sizeof(History));
        if (!h) { PyErr_NoMemory(); return -1; }
        h->hash = hash;
        Py_INCREF(r->src); h->src = r->src;
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 64;
            History **items = grown(t->items, cap, sizeof *items);
            if (!items) { history_free(h); return -1; }
            t->items = items; t->cap = cap;
            t->items[t->n++] = h;
            if (history_reindex(t) < 0) return -1;
        } else {
            t->items[t->n] = h;
            t->ix.slots[slot] = (uint32_t)(++t->n);
        }
    }
    if (h->count == h->cap && h->cap < p->history_limit) {
        int cap = h->cap ? h->cap * 2 : 4;
        if (cap > p->history_limit) cap = (int)p->history_limit;
        Sent *ring = PyMem_Malloc((size_t)cap * sizeof(Sent));
        if (!ring) { PyErr_NoMemory(); return -1; }
        for (int i = 0; i < h->count; i++) ring[i] = h->ring[(h->head + i) % h->cap];
        PyMem_Free(h->ring);
        h->ring = ring; h->head = 0; h->cap = cap;
    }
    if (h->count == h->cap) {  /* full at the limit: the oldest goes (deque maxlen) */
        Py_DECREF(h->ring[h->head].dst);
        h->head = (h->head + 1) % h->cap;
        h->count--;
    }
    Sent *s = &h->ring[(h->head + h->count) % h->cap];
    s->ts = r->ts; s->dst = Py_NewRef(r->dst); s->sport = r->sport; s->dport = r->dport; s->proto = r->proto;
    h->count++;
    return 0;
}

static int contacts_reindex(ContactTable *t) {
    index_free(&t->ix);
    if (index_init(&t->ix, t->cap) < 0) return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = t->items[i].hash & t->ix.mask;
        while (t->ix.slots[s]) s = (s + 1) & t->ix.mask;
        t->ix.slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

static int contact_add(Pipeline *p, const Record *r) {
    ContactTable *t = &p->contacts;
    uint64_t hash = mix64(str_hash(r->src) * 1000003 ^ str_hash(r->dst) * 31 ^ ((uint64_t)r->proto << 20)
                          ^ (uint64_t)(uint32_t)r->dport);
    size_t s = hash & t->ix.mask;
    for (uint32_t at; (at = t->ix.slots[s]); s = (s + 1) & t->ix.mask) {
        Contact *c = &t->items[at - 1];
        if (c->hash == hash && c->proto == r->proto && c->dport == r->dport && same_str(c->src, r->src)
                && same_str(c->dst, r->dst)) {
            if (r->ts > c->last) c->last = r->ts;
            else if (r->ts < c->first) c->first = r->ts;
            return 0;
        }
    }
    Contact c = {hash, Py_NewRef(r->src), Py_NewRef(r->dst), r->proto, r->dport, r->ts, r->ts};
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        Contact *items = grown(t->items, cap, sizeof *items);
        if (!items) { Py_DECREF(c.src); Py_DECREF(c.dst); return -1; }
        t->items = items; t->cap = cap;
        t->items[t->n++] = c;
        return contacts_reindex(t);
    }
    t->items[t->n] = c;
    t->ix.slots[s] = (uint32_t)(++t->n);
    return 0;
}

/* A Candidate (a named tuple): made as tuple.__new__(Candidate, fields) does, without the
 * Python-level __new__ that calling the class runs. */
static PyObject *new_candidate(Pipeline *p, double ts, PyObject *src, PyObject *sport, PyObject *dst,
                               PyObject *dport, PyObject *proto) {
    PyObject *when = PyFloat_FromDouble(ts);
    PyObject *fields = when ? PyTuple_Pack(6, when, src, sport, dst, dport, proto) : NULL;
    Py_XDECREF(when);
    if (!fields) return NULL;
    PyObject *c;
    if (PyType_Check(p->make_candidate) && PyType_IsSubtype((PyTypeObject *)p->make_candidate, &PyTuple_Type)) {
        PyObject *args = PyTuple_Pack(1, fields);
        c = args ? PyTuple_Type.tp_new((PyTypeObject *)p->make_candidate, args, NULL) : NULL;
        Py_XDECREF(args);
    } else {
        c = PyObject_Call(p->make_candidate, fields, NULL);
    }
    Py_DECREF(fields);
    return c;
}

/* TriggerHistory.candidates: packets sent from `address` in [start - lookback, start]. */
static PyObject *candidates_of(Pipeline *p, PyObject *address, double start) {
    size_t slot;
    History *h = history_find(&p->history, mix64(str_hash(address)), address, &slot);
    PyObject *list = PyList_New(0);
    if (!list || !h) return list;
    double earliest = start - p->lookback;
    for (int i = 0; i < h->count; i++) {
        Sent *s = &h->ring[(h->head + i) % h->cap];
        if (!(earliest <= s->ts && s->ts <= start)) continue;
        PyObject *sport = s->sport == NO_PORT ? Py_NewRef(Py_None) : PyLong_FromLong(s->sport);
        PyObject *dport = s->dport == NO_PORT ? Py_NewRef(Py_None) : PyLong_FromLong(s->dport);
        PyObject *c = (sport && dport) ? new_candidate(p, s->ts, h->src, sport, s->dst, dport, p->protos[s->proto])
                                       : NULL;
        Py_XDECREF(sport); Py_XDECREF(dport);
        if (!c || PyList_Append(list, c) < 0) { Py_XDECREF(c); Py_DECREF(list); return NULL; }
        Py_DECREF(c);
    }
    return list;
}

/* ------------------------------------------------------------------------------------------ */
/* The packet's episode in `table` (the one remembered in *last, or found, or begun), moved on to
 * time ts and counted: ScanDetector.feed's steps, the same for a pair (dst given) and for a
 * source's sweep (dst NULL). NULL on error. */
static Episode *advance_episode(Pipeline *p, EpisodeTable *table, Episode **last, PyObject *src, PyObject *dst,
                                double ts) {
    Episode *e = *last;
    if (!e || !same_str(e->src, src) || (dst && !same_str(e->dst, dst))) {
        uint64_t hash = pair_hash(src, dst);
        size_t slot;
        e = table_find(table, hash, src, dst, &slot);
        if (!e) {
            e = episode_new(src, dst, hash, dst == NULL);
            if (!e) return NULL;
            episode_reset(e, ts);
            if (table_append(table, e, slot) < 0) return NULL;
        }
        *last = e;
    }
    if (ts - e->last > p->window) {
        if (close_episode(p, e) < 0) return NULL;
        episode_reset(e, ts);
    } else if (ts > e->last) {
        e->last = ts;
    }
    e->packets++;
    return e;
}

/* ScanDetector.feed for one packet. */
static int detect(Pipeline *p, const Record *r) {
    double ts = r->ts;
    if (ts >= p->next_expiry && detector_expire(p, ts) < 0) return -1;
    Episode *e = advance_episode(p, &p->pairs, &p->last_pair, r->src, r->dst, ts);
    if (!e) return -1;
    int added = portmap_add(&e->seen, port_key(r->proto, r->dport), ts);
    if (added < 0) return -1;
    if (added && (long)e->seen.n == p->min_ports) {
        Py_XSETREF(e->candidates, candidates_of(p, e->dst, e->start));
        if (!e->candidates) return -1;
    }
    if (r->direction == DIR_OUT) return 0;
    Episode *w = advance_episode(p, &p->sources, &p->last_sweep, r->src, NULL, ts);
    if (!w) return -1;
    if (hostmap_add(&w->hosts, r->dst, ts) < 0) return -1;
    if (portmap_add(&w->seen, port_key(r->proto, r->dport), ts) < 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing. Every helper returns a pointer past what it matched, or NULL if it did not match. */
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alnum(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline int is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
/* Python's str.strip() whitespace, ASCII part (a rest with other bytes goes to the Python lane). */
static inline int py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

static inline const char *skip_token(const char *s, const char *end) {
    const char *t = memchr(s, ' ', (size_t)(end - s));
    if (!t) t = end;
    return t > s ? t : NULL;
}

/* `[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}` */
static int syslog_stamp(const char *s, const char *end) {
    if (end - s < 16) return 0;
    const unsigned char *u = (const unsigned char *)s;
    return u[0] >= 'A' && u[0] <= 'Z' && u[1] >= 'a' && u[1] <= 'z' && u[2] >= 'a' && u[2] <= 'z' && u[3] == ' '
        && (u[4] == ' ' || is_digit(u[4])) && is_digit(u[5]) && u[6] == ' ' && is_digit(u[7]) && is_digit(u[8])
        && u[9] == ':' && is_digit(u[10]) && is_digit(u[11]) && u[12] == ':' && is_digit(u[13]) && is_digit(u[14])
        && u[15] == ' ';
}

/* `[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?` */
static const char *iso_stamp(const char *s, const char *end) {
    const unsigned char *u = (const unsigned char *)s;
    if (end - s < 19) return NULL;
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (int i = 0; i < 19; i++) {
        if (shape[i] == 'd') { if (!is_digit(u[i])) return NULL; }
        else if (shape[i] == 'T') { if (u[i] != 'T' && u[i] != ' ') return NULL; }
        else if (u[i] != (unsigned char)shape[i]) return NULL;
    }
    const char *t = s + 19;
    if (t < end && *t == '.' && t + 1 < end && is_digit((unsigned char)t[1])) {
        t += 2;
        while (t < end && is_digit((unsigned char)*t)) t++;
    }
    if (t < end && *t == 'Z') return t + 1;
    if (t < end && (*t == '+' || *t == '-')) {
        const char *z = t + 1;
        if (end - z >= 2 && is_digit((unsigned char)z[0]) && is_digit((unsigned char)z[1])) {
            z += 2;
            if (z < end && *z == ':') z++;
            if (end - z >= 2 && is_digit((unsigned char)z[0]) && is_digit((unsigned char)z[1])) return z + 2;
        }
        /* The zone is optional: the regex backtracks to no zone, and then needs the space. */
    }
    return t;
}

/* `[0-9]+\.[0-9]+` as float(): exact for up to 15 digits, Python's own conversion beyond. */
static int decimal_value(const char *s, const char *end, double *out) {
    static const double POW10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                   1e14, 1e15};
    uint64_t m = 0;
    int digits = 0, fraction = -1;
    for (const char *t = s; t < end; t++) {
        if (*t == '.') { fraction = 0; continue; }
        m = m * 10 + (uint64_t)(*t - '0');
        digits++;
        if (fraction >= 0) fraction++;
    }
    if (digits <= 15 && fraction >= 0) {
        *out = (double)m / POW10[fraction];
        return 0;
    }
    char buf[64];
    if (end - s >= (long)sizeof buf) return -1;
    memcpy(buf, s, (size_t)(end - s));
    buf[end - s] = 0;
    *out = PyOS_string_to_double(buf, NULL, NULL);
    if (*out == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    return 0;
}

/* `[0-9]+` holding at most `max_digits` digits */
static const char *small_number(const char *s, const char *end, int max_digits, long *out) {
    long v = 0;
    const char *t = s;
    while (t < end && is_digit((unsigned char)*t)) {
        if (t - s >= max_digits) return NULL;
        v = v * 10 + (*t - '0');
        t++;
    }
    if (t == s) return NULL;
    *out = v;
    return t;
}

/* `[0-9]+`: its end, or NULL */
static const char *skip_digits(const char *s, const char *end) {
    const char *t = s;
    while (t < end && is_digit((unsigned char)*t)) t++;
    return t > s ? t : NULL;
}

static const char *find(const char *s, const char *end, const char *needle, size_t n) {
    if (end - s < (long)n) return NULL;
    return memmem(s, (size_t)(end - s), needle, n);
}

/* Empties the address cache. The last source and destination (recent[]) hold references of
 * their own and stay: a line may have matched one of them before the other's lookup got here. */
static int address_ix_reset(Pipeline *p) {
    for (size_t i = 0; i < p->naddresses; i++) Py_XDECREF(p->addresses[i].value);
    p->naddresses = 0;
    memset(p->address_ix.slots, 0, (p->address_ix.mask + 1) * sizeof(uint32_t));
    return 0;
}

/* The kernel's fully expanded IPv6 form, compressed as RFC 5952 (and inet_ntop) write it: the
 * longest run of two or more zero groups (the first of equals) becomes "::". Addresses that
 * inet_ntop may write with an IPv4 tail go to the Python parser. */
static PyObject *expanded_ipv6(const char *s) {
    unsigned words[8];
    for (int g = 0; g < 8; g++) {
        const char *t = s + g * 5;
        if (g < 7 && t[4] != ':') return NULL;
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
            unsigned char c = (unsigned char)t[i];
            if (!is_hex(c)) return NULL;
            v = v * 16 + (is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        words[g] = v;
    }
    if (!(words[0] | words[1] | words[2] | words[3] | words[4]) && (words[5] == 0 || words[5] == 0xffff))
        return NULL;
    int best = -1, best_len = 0;
    for (int g = 0; g < 8;) {
        if (words[g]) { g++; continue; }
        int run = g;
        while (g < 8 && !words[g]) g++;
        if (g - run > best_len) { best = run; best_len = g - run; }
    }
    if (best_len < 2) best = -1;
    static const char HEX[] = "0123456789abcdef";
    char text[40], *o = text;
    for (int g = 0; g < 8; g++) {
        if (g == best) {
            *o++ = ':';
            if (g == 0) *o++ = ':';
            g += best_len - 1;
            continue;
        }
        unsigned v = words[g];
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (v >> shift) & 15;
            if (d || started || shift == 0) { *o++ = HEX[d]; started = 1; }
        }
        if (g < 7) *o++ = ':';
    }
    return PyUnicode_FromStringAndSize(text, o - text);
}

/* Address text -> normalised address (new reference), Py_None if it is no address, NULL on error. */
static uint64_t bytes_hash(const char *s, size_t n) {
    uint64_t h = n, word;
    for (; n >= 8; s += 8, n -= 8) { memcpy(&word, s, 8); h = mix64(h ^ word); }
    word = 0;
    memcpy(&word, s, n);
    return mix64(h ^ word);
}

static PyObject *address(Pipeline *p, const char *s, size_t n, PyObject *parser) {
    uint64_t h = bytes_hash(s, n);
    size_t slot = h & p->address_ix.mask;
    if (n < RAW_ADDRESS_MAX) {
        for (uint32_t at; (at = p->address_ix.slots[slot]); slot = (slot + 1) & p->address_ix.mask) {
            CachedAddress *c = &p->addresses[at - 1];
            if ((size_t)c->len == n && memcmp(c->raw, s, n) == 0)
                return Py_NewRef(c->value ? c->value : Py_None);
        }
    }
    PyObject *value = (n == 39) ? expanded_ipv6(s) : NULL;
    if (!value && PyErr_Occurred()) return NULL;
    if (!value) {
        /* Everything but the kernel's expanded IPv6 form: the Python parser decides. */
        PyObject *r = PyObject_CallMethod(parser, "_address", "s#", s, (Py_ssize_t)n);
        if (!r) return NULL;
        if (r == Py_None || (PyUnicode_Check(r) && PyUnicode_GET_LENGTH(r) == 0)) { Py_DECREF(r); value = NULL; }
        else value = r;
    }
    if (n < RAW_ADDRESS_MAX) {
        if (p->naddresses >= ADDRESS_CACHE_LIMIT) {
            address_ix_reset(p);
            slot = h & p->address_ix.mask;
        }
        CachedAddress *c = &p->addresses[p->naddresses];
        memcpy(c->raw, s, n);
        c->len = (int)n;
        c->value = value ? Py_NewRef(value) : NULL;
        p->address_ix.slots[slot] = (uint32_t)(++p->naddresses);
    }
    return value ? value : Py_NewRef(Py_None);
}

/* `[0-9a-fA-F:.]+` up to the next space: its end, or NULL. The last address of this role was
 * checked already. */
static const char *address_token(Pipeline *p, int role, const char *s, const char *end, int *known) {
    const char *stop = memchr(s, ' ', (size_t)(end - s));
    if (!stop || stop == s) return NULL;
    size_t n = (size_t)(stop - s);
    const CachedAddress *c = &p->recent[role];
    *known = c->value && (size_t)c->len == n && memcmp(c->raw, s, n) == 0;
    if (*known) return stop;
    for (const char *t = s; t < stop; t++)
        if (!is_hex((unsigned char)*t) && *t != ':' && *t != '.') return NULL;
    return stop;
}

/* Scans come as runs of one source and one destination: the last of each is at hand. */
static PyObject *recent_address(Pipeline *p, int role, const char *s, size_t n, PyObject *parser) {
    CachedAddress *c = &p->recent[role];
    PyObject *value = address(p, s, n, parser);
    if (value && value != Py_None && n < RAW_ADDRESS_MAX) {
        memcpy(c->raw, s, n);
        c->len = (int)n;
        Py_XSETREF(c->value, Py_NewRef(value));
    }
    return value;
}

static int proto_id(Pipeline *p, const char *s, size_t n) {
    for (int i = 0; i < p->nprotos; i++) {
        const char *name = PyUnicode_AsUTF8(p->protos[i]);
        if (strlen(name) == n && memcmp(name, s, n) == 0) return i;
    }
    if (p->nprotos >= MAX_PROTOS) return -1;
    PyObject *name = PyUnicode_FromStringAndSize(s, (Py_ssize_t)n);
    if (!name) return -2;
    PyUnicode_InternInPlace(&name);
    p->protos[p->nprotos] = name;
    return p->nprotos++;
}

static int proto_of(Pipeline *p, PyObject *name) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(name, &n);
    if (!s) return -2;
    return proto_id(p, s, (size_t)n);
}

/* NetfilterParser's PROTOCOL_NAMES, or a number up to 255. */
static int is_protocol(const char *s, size_t n) {
    static const char *NAMES[] = {"TCP", "UDP", "UDPLITE", "SCTP", "DCCP", "ICMP", "ICMPv6", "AH", "ESP"};
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (strlen(NAMES[i]) == n && memcmp(NAMES[i], s, n) == 0) return 1;
    if (n == 0 || n > 3) return 0;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 255;
}

static int is_ported(const char *s, size_t n) {
    static const char *PORTED[] = {"TCP", "UDP", "UDPLITE", "SCTP", "DCCP"};
    for (int i = 0; i < 5; i++) if (strlen(PORTED[i]) == n && memcmp(PORTED[i], s, n) == 0) return 1;
    return 0;
}

static int all_ascii(const char *s, const char *end) {
    uint64_t seen = 0, word;
    for (; end - s >= 8; s += 8) { memcpy(&word, s, 8); seen |= word; }
    for (; s < end; s++) seen |= (unsigned char)*s;
    return !(seen & 0x8080808080808080ULL);
}

/* _cut_short: a ported protocol printed without ports (-1: the Python lane must judge). */
static int cut_short(const char *rest, const char *end) {
    if (rest == end) return 1;
    if (!all_ascii(rest, end)) return -1;  /* Unicode whitespace is str.strip()'s to judge */
    const char *t = rest;
    while (t < end && py_space((unsigned char)*t)) t++;
    if (t == end) return 0;
    return find(rest, end, "INCOMPLETE", 10) == NULL;
}

/* clock.syslog(stamp): 0 with *wall set, 1 for a bad timestamp, -1 on error. */
static int ask_clock(Pipeline *p, const char *stamp, double *wall) {
    PyObject *r = PyObject_CallFunction(p->syslog_method, "s#", stamp, (Py_ssize_t)15);
    if (!r) {
        if (!PyErr_ExceptionMatches(p->bad_timestamp)) return -1;
        PyErr_Clear();
        return 1;
    }
    *wall = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return (*wall == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* The clock is asked once per distinct minute: its seconds are added here. That holds because
 * zones change offset on whole minutes; it is only done without --year, whose year-rollover
 * rule depends on the exact sequence of stamps the clock is asked about. */
static int wall_of_stamp(Pipeline *p, const char *stamp, double *wall) {
    int second = (stamp[13] - '0') * 10 + (stamp[14] - '0');
    if (p->by_minute && second > 59)
        return ask_clock(p, stamp, wall);  /* not a second of that minute (the clock says what): no caching */
    if (!p->by_minute) {
        if (p->last_stamp_state && memcmp(p->last_stamp, stamp, 15) == 0) {
            *wall = p->last_wall;
            return p->last_stamp_state == 1 ? 0 : 1;
        }
        int rc = ask_clock(p, stamp, wall);
        if (rc < 0) return -1;
        memcpy(p->last_stamp, stamp, 15);
        p->last_wall = *wall;
        p->last_stamp_state = rc ? 2 : 1;
        return rc;
    }
    if (!(p->last_stamp_state && memcmp(p->last_stamp, stamp, 12) == 0)) {
        char minute[15];
        memcpy(minute, stamp, 12);
        memcpy(minute + 12, ":00", 3);
        int rc = ask_clock(p, minute, &p->last_wall);
        if (rc < 0) return -1;
        memcpy(p->last_stamp, minute, 15);
        p->last_stamp_state = rc ? 2 : 1;
    }
    if (p->last_stamp_state == 2) return 1;
    *wall = p->last_wall + second;
    return 0;
}

enum { LANE_PYTHON = 0, LANE_PACKET = 1, LANE_SKIPPED = 2, LANE_ERROR = -1 };

/* One line in the C lane: LANE_PACKET (r filled), LANE_SKIPPED (counted), LANE_PYTHON (the
 * Python parser must read it) or LANE_ERROR. */
static int parse_record(Pipeline *p, const char *line, const char *end, PyObject *parser, Record *r) {
    /* The wrapper. */
    const char *s = line, *stamp = NULL, *iso = NULL, *iso_end = NULL, *kmsg = NULL, *kmsg_end = NULL;
    const char *uptime = NULL, *uptime_end = NULL;
    if (syslog_stamp(s, end)) {
        stamp = s;
        s = skip_token(s + 16, end);
        if (!s || s >= end || *s != ' ') return LANE_PYTHON;
        s++;
        if (end - s >= 8 && memcmp(s, "kernel: ", 8) == 0) s += 8;
    } else if (is_digit((unsigned char)*s)) {
        const char *t = iso_stamp(s, end);
        if (t && t < end && *t == ' ') {
            iso = s; iso_end = t;
            s = skip_token(t + 1, end);
            if (!s || s >= end || *s != ' ') return LANE_PYTHON;
            s++;
            if (end - s >= 8 && memcmp(s, "kernel: ", 8) == 0) s += 8;
        } else {
            /* /dev/kmsg: `[0-9]+,[0-9]+,(usec),[^;]*;` */
            const char *a = skip_digits(s, end);
            if (!a || a >= end || *a != ',') return LANE_PYTHON;
            const char *b = skip_digits(a + 1, end);
            if (!b || b >= end || *b != ',') return LANE_PYTHON;
            kmsg = b + 1;
            kmsg_end = kmsg;
            while (kmsg_end < end && is_digit((unsigned char)*kmsg_end)) kmsg_end++;
            if (kmsg_end == kmsg || kmsg_end >= end || *kmsg_end != ',' || kmsg_end - kmsg > 15) return LANE_PYTHON;
            const char *semi = memchr(kmsg_end, ';', (size_t)(end - kmsg_end));
            if (!semi) return LANE_PYTHON;
            s = semi + 1;
        }
    }
    if (s < end && *s == '[') {
        /* `\[ *([0-9]+\.[0-9]+)\] ` then maybe `[^ ]+ kernel: ` */
        const char *t = s + 1;
        while (t < end && *t == ' ') t++;
        const char *u = t;
        while (t < end && is_digit((unsigned char)*t)) t++;
        if (t == u || t >= end || *t != '.') return LANE_PYTHON;
        t++;
        const char *f = t;
        while (t < end && is_digit((unsigned char)*t)) t++;
        if (t == f || end - t < 2 || t[0] != ']' || t[1] != ' ') return LANE_PYTHON;
        uptime = u; uptime_end = t;
        s = t + 2;
        const char *tok = skip_token(s, end);
        if (tok && end - tok >= 9 && memcmp(tok, " kernel: ", 9) == 0) s = tok + 9;
    }
    if (!stamp && !iso && !kmsg && !uptime) return LANE_PYTHON;  /* maybe a wrapper further in */

    /* The body: `prefix IN=iif OUT=oif (MAC=... )?SRC=a DST=b ... PROTO=p( SPT=n DPT=n| TYPE=n)?rest` */
    const char *in = s;
    while ((in = memchr(in, 'I', (size_t)(end - in))) && (end - in < 3 || in[1] != 'N' || in[2] != '=')) in++;
    if (!in) return LANE_PYTHON;
    const char *t = in + 3;
    const char *iif = t;
    while (t < end && *t != ' ') t++;
    size_t iif_len = (size_t)(t - iif);
    if (end - t < 5 || memcmp(t, " OUT=", 5) != 0) return LANE_PYTHON;
    t += 5;
    const char *oif = t;
    while (t < end && *t != ' ') t++;
    size_t oif_len = (size_t)(t - oif);
    if (t >= end) return LANE_PYTHON;
    t++;
    if (end - t >= 4 && memcmp(t, "MAC=", 4) == 0) {
        t = memchr(t + 4, ' ', (size_t)(end - t - 4));
        if (!t) return LANE_PYTHON;
        t++;
    }
    if (end - t < 4 || memcmp(t, "SRC=", 4) != 0) return LANE_PYTHON;
    const char *src = t + 4;
    int src_known, dst_known;
    const char *src_end = address_token(p, 0, src, end, &src_known);
    if (!src_end || end - src_end < 5 || memcmp(src_end, " DST=", 5) != 0) return LANE_PYTHON;
    const char *dst = src_end + 5;
    const char *dst_end = address_token(p, 1, dst, end, &dst_known);
    if (!dst_end || dst_end >= end) return LANE_PYTHON;
    const char *after = dst_end + 1;
    /* Greedy `[^\n]*PROTO=`: the last PROTO= followed by a name. */
    const char *proto = NULL;
    for (const char *q = end - 6; q >= after && (q = memrchr(after, 'P', (size_t)(q - after + 1))); q--) {
        if (memcmp(q, "PROTO=", 6) == 0 && q + 6 < end && is_alnum((unsigned char)q[6])) {
            proto = q + 6;
            break;
        }
    }
    if (!proto) return LANE_PYTHON;
    const char *proto_end = proto;
    while (proto_end < end && is_alnum((unsigned char)*proto_end)) proto_end++;
    long sport = NO_PORT, dport = NO_PORT, icmp = NO_PORT;
    const char *rest = proto_end;
    int ports = 0;
    if (end - rest >= 5 && memcmp(rest, " SPT=", 5) == 0) {
        const char *a = rest + 5;
        while (a < end && is_digit((unsigned char)*a)) a++;
        if (a > rest + 5 && end - a >= 5 && memcmp(a, " DPT=", 5) == 0) {
            const char *b = a + 5;
            while (b < end && is_digit((unsigned char)*b)) b++;
            if (b > a + 5) {
                if (!small_number(rest + 5, a, 5, &sport) || !small_number(a + 5, b, 5, &dport)
                        || sport > 65535 || dport > 65535)
                    return LANE_PYTHON;  /* not a port: the Python lane says what it is */
                ports = 1;
                rest = b;
            }
        }
    }
    if (!ports && end - rest >= 6 && memcmp(rest, " TYPE=", 6) == 0) {
        const char *a = rest + 6;
        while (a < end && is_digit((unsigned char)*a)) a++;
        if (a > rest + 6) {
            if (!small_number(rest + 6, a, 5, &icmp) || icmp > 65535) return LANE_PYTHON;
            rest = a;
        }
    }

    /* The time. */
    double ts;
    if (stamp) {
        double wall;
        int rc = wall_of_stamp(p, stamp, &wall);
        if (rc < 0) return LANE_ERROR;
        if (rc > 0) { p->skips[SKIP_BAD_TIMESTAMP]++; return LANE_SKIPPED; }
        if (uptime) {
            double up;
            if (decimal_value(uptime, uptime_end, &up) < 0) return LANE_PYTHON;
            if (!p->have_anchor) {
                p->anchor = wall - up;
                p->have_anchor = 1;
            } else {
                double drift = wall - up - p->anchor;
                if (drift > 0.0 || drift < -p->anchor_slack) p->anchor = wall - up;
            }
            ts = p->anchor + up;
        } else {
            ts = wall;
        }
    } else if (iso) {
        PyObject *v = PyObject_CallFunction(p->iso_method, "s#", iso, (Py_ssize_t)(iso_end - iso));
        if (!v) {
            if (!PyErr_ExceptionMatches(p->bad_timestamp)) return LANE_ERROR;
            PyErr_Clear();
            p->skips[SKIP_BAD_TIMESTAMP]++;
            return LANE_SKIPPED;
        }
        ts = PyFloat_AsDouble(v);
        Py_DECREF(v);
        if (ts == -1.0 && PyErr_Occurred()) return LANE_ERROR;
    } else if (kmsg) {
        uint64_t usec = 0;
        for (const char *q = kmsg; q < kmsg_end; q++) usec = usec * 10 + (uint64_t)(*q - '0');
        ts = p->boot_time + (double)usec / 1e6;
    } else {
        double up;
        if (decimal_value(uptime, uptime_end, &up) < 0) return LANE_PYTHON;
        ts = p->boot_time + up;
    }

    /* The packet. */
    PyObject *source = src_known ? Py_NewRef(p->recent[0].value)
                                 : recent_address(p, 0, src, (size_t)(src_end - src), parser);
    if (!source) return LANE_ERROR;
    PyObject *target = dst_known ? Py_NewRef(p->recent[1].value)
                                 : recent_address(p, 1, dst, (size_t)(dst_end - dst), parser);
    if (!target) { Py_DECREF(source); return LANE_ERROR; }
    if (source == Py_None || target == Py_None) {
        Py_DECREF(source); Py_DECREF(target);
        p->skips[SKIP_BAD_ADDRESS]++;
        return LANE_SKIPPED;
    }
    if (!is_protocol(proto, (size_t)(proto_end - proto))) {
        Py_DECREF(source); Py_DECREF(target);
        p->skips[SKIP_BAD_PROTOCOL]++;
        return LANE_SKIPPED;
    }
    int cut;
    if (ports) {
        r->sport = (int)sport; r->dport = (int)dport;
    } else if (icmp != NO_PORT) {
        r->sport = NO_PORT; r->dport = (int)icmp;
    } else if (is_ported(proto, (size_t)(proto_end - proto)) && (cut = cut_short(rest, end)) != 0) {
        Py_DECREF(source); Py_DECREF(target);
        if (cut < 0) return LANE_PYTHON;
        p->skips[SKIP_TRUNCATED]++;
        return LANE_SKIPPED;
    } else {
        r->sport = r->dport = NO_PORT;
    }
    int id = proto_id(p, proto, (size_t)(proto_end - proto));
    if (id < 0) {
        Py_DECREF(source); Py_DECREF(target);
        return id == -1 ? LANE_PYTHON : LANE_ERROR;
    }
    r->ts = ts;
    r->src = source; r->dst = target;
    r->proto = id;
    r->direction = iif_len ? (oif_len ? DIR_FWD : DIR_IN) : DIR_OUT;
    return LANE_PACKET;
}


/* Bytes beyond ASCII need no care but in one place: the Python lane decodes the line first (an
 * invalid sequence becomes U+FFFD), which changes none of the fields read here, only what
 * str.strip() takes for whitespace in the rest of a record (see cut_short). */
static int parse_line(Pipeline *p, const char *line, const char *end, PyObject *parser, Record *r) {
    int lane = parse_record(p, line, end, parser, r);
    if (lane != LANE_PYTHON) return lane;
    /* Not the common layout. Two verdicts need no pattern (NetfilterParser._slow). */
    if (!find(line, end, "IN=", 3) || !find(line, end, "SRC=", 4)) {
        p->skips[SKIP_NOT_NETFILTER]++;
        return LANE_SKIPPED;
    }
    if (!find(line, end, "PROTO=", 6)) {
        p->skips[SKIP_TRUNCATED]++;
        return LANE_SKIPPED;
    }
    return LANE_PYTHON;
}

/* A line for the Python parser (same clock, same anchor); 1 if it made a packet into r. */
static int python_lane(Pipeline *p, const char *line, const char *end, Record *r) {
    PyObject *anchor = p->have_anchor ? PyFloat_FromDouble(p->anchor) : Py_NewRef(Py_None);
    if (!anchor || PyObject_SetAttrString(p->clock, "anchor", anchor) < 0) { Py_XDECREF(anchor); return -1; }
    Py_DECREF(anchor);
    PyObject *packets = PyObject_CallFunction(p->fallback, "s#", line, (Py_ssize_t)(end - line));
    if (!packets) {
        /* Undecodable bytes: the Python lane reads the line as the chunk decoder would. */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return -1;
        PyErr_Clear();
        PyObject *text = PyUnicode_DecodeUTF8(line, end - line, "replace");
        if (!text) return -1;
        packets = PyObject_CallFunctionObjArgs(p->fallback, text, NULL);
        Py_DECREF(text);
        if (!packets) return -1;
    }
    p->last_stamp_state = 0;  /* the Python lane may have moved the clock's year */
    PyObject *now = PyObject_GetAttrString(p->clock, "anchor");
    if (!now) { Py_DECREF(packets); return -1; }
    if (now != Py_None) { p->anchor = PyFloat_AsDouble(now); p->have_anchor = 1; }
    Py_DECREF(now);
    int made = 0;
    if (PyList_GET_SIZE(packets) > 0) {
        PyObject *pk = PyList_GET_ITEM(packets, 0);
        r->ts = PyFloat_AsDouble(PyTuple_GET_ITEM(pk, 0));
        r->src = Py_NewRef(PyTuple_GET_ITEM(pk, 1));
        r->dst = Py_NewRef(PyTuple_GET_ITEM(pk, 2));
        r->proto = proto_of(p, PyTuple_GET_ITEM(pk, 3));
        PyObject *sport = PyTuple_GET_ITEM(pk, 4), *dport = PyTuple_GET_ITEM(pk, 5);
        r->sport = sport == Py_None ? NO_PORT : (int)PyLong_AsLong(sport);
        r->dport = dport == Py_None ? NO_PORT : (int)PyLong_AsLong(dport);
        const char *direction = PyUnicode_AsUTF8(PyTuple_GET_ITEM(pk, 6));
        if (r->proto < 0 || !direction || PyErr_Occurred()) {
            Py_DECREF(r->src); Py_DECREF(r->dst); Py_DECREF(packets);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "fast lane: more protocol names than it holds");
            return -1;
        }
        r->direction = strcmp(direction, "in") == 0 ? DIR_IN : strcmp(direction, "out") == 0 ? DIR_OUT : DIR_FWD;
        made = 1;
    }
    Py_DECREF(packets);
    return made;
}

/* ------------------------------------------------------------------------------------------ */
static void drop_records(Pipeline *p) {
    for (size_t i = 0; i < p->nrecords; i++) { Py_DECREF(p->records[i].src); Py_DECREF(p->records[i].dst); }
    p->nrecords = 0;
}

static PyObject *Pipeline_feed(Pipeline *p, PyObject *arg) {
    Py_buffer view;
    if (!p->clock) { PyErr_SetString(PyExc_RuntimeError, "start_file() first"); return NULL; }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *parser = PyObject_GetAttrString(p->fallback, "__self__");
    if (!parser) { PyBuffer_Release(&view); return NULL; }
    const char *s = view.buf, *end = s + view.len;
    int failed = 0;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        if (eol > s) {
            p->lines++;
            if (p->nrecords == p->records_cap) {
                size_t cap = p->records_cap ? p->records_cap * 2 : 1024;
                Record *records = grown(p->records, cap, sizeof *records);
                if (!records) { failed = 1; break; }
                p->records = records; p->records_cap = cap;
            }
            Record *r = &p->records[p->nrecords];
            int lane = parse_line(p, s, eol, parser, r);
            if (lane == LANE_PYTHON) lane = python_lane(p, s, eol, r);
            if (lane < 0) { failed = 1; break; }
            if (lane == LANE_PACKET) p->nrecords++;
        }
        s = eol + 1;
    }
    Py_DECREF(parser);
    PyBuffer_Release(&view);
    /* As analyze's Python lane: the history takes the whole chunk first, then the detector. */
    if (!failed && p->nrecords) {
        p->packets += (long long)p->nrecords;
        if (p->records[0].ts >= p->history_next_expiry && history_expire(p, p->records[0].ts) < 0) failed = 1;
        for (size_t i = 0; !failed && i < p->nrecords; i++) {
            Record *r = &p->records[i];
            if (r->direction == DIR_IN) continue;
            if (history_add(p, r) < 0 || contact_add(p, r) < 0) failed = 1;
        }
        for (size_t i = 0; !failed && i < p->nrecords; i++)
            if (detect(p, &p->records[i]) < 0) failed = 1;
    }
    drop_records(p);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Pipeline_start_file(Pipeline *p, PyObject *args) {
    PyObject *clock, *fallback;
    if (!PyArg_ParseTuple(args, "OO", &clock, &fallback)) return NULL;
    PyObject *boot = PyObject_GetAttrString(clock, "boot_time");
    if (!boot) return NULL;
    double boot_time = PyFloat_AsDouble(boot);
    Py_DECREF(boot);
    if (boot_time == -1.0 && PyErr_Occurred()) return NULL;
    PyObject *syslog = PyObject_GetAttrString(clock, "syslog");
    PyObject *iso = syslog ? PyObject_GetAttrString(clock, "iso") : NULL;
    PyObject *anchor = iso ? PyObject_GetAttrString(clock, "anchor") : NULL;
    if (!anchor) { Py_XDECREF(syslog); Py_XDECREF(iso); return NULL; }
    p->have_anchor = anchor != Py_None;
    p->anchor = p->have_anchor ? PyFloat_AsDouble(anchor) : 0.0;
    Py_DECREF(anchor);
    if (PyErr_Occurred()) { Py_DECREF(syslog); Py_DECREF(iso); return NULL; }
    Py_XSETREF(p->clock, Py_NewRef(clock));
    Py_XSETREF(p->fallback, Py_NewRef(fallback));
    Py_XSETREF(p->syslog_method, syslog);
    Py_XSETREF(p->iso_method, iso);
    p->boot_time = boot_time;
    p->last_stamp_state = 0;
    PyObject *fixed_year = PyObject_GetAttrString(clock, "fixed_year");
    if (!fixed_year) return NULL;
    p->by_minute = fixed_year == Py_None;
    Py_DECREF(fixed_year);
    address_ix_reset(p);  /* a new stream, a new parser: as the Python lane */
    Py_CLEAR(p->recent[0].value);
    Py_CLEAR(p->recent[1].value);
    Py_RETURN_NONE;
}

static PyObject *Pipeline_end_file(Pipeline *p, PyObject *unused) {
    if (p->clock) {
        PyObject *anchor = p->have_anchor ? PyFloat_FromDouble(p->anchor) : Py_NewRef(Py_None);
        if (!anchor || PyObject_SetAttrString(p->clock, "anchor", anchor) < 0) { Py_XDECREF(anchor); return NULL; }
        Py_DECREF(anchor);
    }
    Py_RETURN_NONE;
}

static PyObject *Pipeline_finish(Pipeline *p, PyObject *unused) {
    if (detector_expire(p, Py_HUGE_VAL) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Pipeline_take_contacts(Pipeline *p, PyObject *unused) {
    ContactTable *t = &p->contacts;
    PyObject *taken = PyDict_New();
    if (!taken) return NULL;
    for (size_t i = 0; i < t->n; i++) {
        Contact *c = &t->items[i];
        PyObject *key = c->dport == NO_PORT
            ? Py_BuildValue("(OOOO)", c->src, p->protos[c->proto], c->dst, Py_None)
            : Py_BuildValue("(OOOi)", c->src, p->protos[c->proto], c->dst, c->dport);
        PyObject *value = Py_BuildValue("[dd]", c->first, c->last);
        if (!key || !value || PyDict_SetItem(taken, key, value) < 0) {
            Py_XDECREF(key); Py_XDECREF(value); Py_DECREF(taken);
            return NULL;
        }
        Py_DECREF(key); Py_DECREF(value);
    }
    for (size_t i = 0; i < t->n; i++) { Py_DECREF(t->items[i].src); Py_DECREF(t->items[i].dst); }
    t->n = 0;
    memset(t->ix.slots, 0, (t->ix.mask + 1) * sizeof(uint32_t));
    return taken;
}

static PyObject *Pipeline_take_skips(Pipeline *p, PyObject *unused) {
    PyObject *skips = PyDict_New();
    for (int i = 0; skips && i < SKIP_KINDS; i++) {
        if (!p->skips[i]) continue;
        PyObject *n = PyLong_FromLongLong(p->skips[i]);
        if (!n || PyDict_SetItemString(skips, SKIP_NAMES[i], n) < 0) { Py_XDECREF(n); Py_CLEAR(skips); break; }
        Py_DECREF(n);
        p->skips[i] = 0;
    }
    return skips;
}

static PyObject *Pipeline_get_lines(Pipeline *p, void *c) { return PyLong_FromLongLong(p->lines); }
static PyObject *Pipeline_get_packets(Pipeline *p, void *c) { return PyLong_FromLongLong(p->packets); }
static PyObject *Pipeline_get_contacts(Pipeline *p, void *c) { return PyLong_FromSize_t(p->contacts.n); }

static int Pipeline_init(Pipeline *p, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"min_ports", "window", "min_hosts", "lookback", "retention", "history_limit",
                             "anchor_slack", "close_pair", "close_sweep", "make_candidate", "bad_timestamp", NULL};
    PyObject *close_pair, *close_sweep, *make_candidate, *bad_timestamp;
    if (p->addresses) {
        PyErr_SetString(PyExc_RuntimeError, "Pipeline is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$ldlddldOOOO", kwlist, &p->min_ports, &p->window,
                                     &p->min_hosts, &p->lookback, &p->retention, &p->history_limit,
                                     &p->anchor_slack, &close_pair, &close_sweep, &make_candidate, &bad_timestamp))
        return -1;
    if (p->min_ports < 2 || p->min_hosts < 2 || p->window <= 0 || p->lookback <= 0 || p->history_limit < 1
            || p->min_ports > 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "min-ports and min-hosts must be at least 2, window and lookback positive");
        return -1;
    }
    Py_XSETREF(p->close_pair, Py_NewRef(close_pair));
    Py_XSETREF(p->close_sweep, Py_NewRef(close_sweep));
    Py_XSETREF(p->make_candidate, Py_NewRef(make_candidate));
    Py_XSETREF(p->bad_timestamp, Py_NewRef(bad_timestamp));
    p->next_expiry = p->history_next_expiry = -Py_HUGE_VAL;
    p->addresses = PyMem_Calloc(ADDRESS_CACHE_LIMIT, sizeof(CachedAddress));
    if (!p->addresses) { PyErr_NoMemory(); return -1; }
    if (index_init(&p->address_ix, ADDRESS_CACHE_LIMIT) < 0 || table_reindex(&p->pairs) < 0
            || table_reindex(&p->sources) < 0 || index_init(&p->history.ix, 8) < 0
            || index_init(&p->contacts.ix, 8) < 0)
        return -1;
    return 0;
}

static void free_episodes(EpisodeTable *t) {
    for (Episode *e = t->head, *next; e; e = next) { next = e->next; episode_free(e); }
    t->head = t->tail = NULL;
    PyMem_Free(t->items);
    index_free(&t->ix);
}

static void Pipeline_dealloc(Pipeline *p) {
    drop_records(p);
    PyMem_Free(p->records);
    free_episodes(&p->pairs);
    free_episodes(&p->sources);
    for (size_t i = 0; i < p->history.n; i++) history_free(p->history.items[i]);
    PyMem_Free(p->history.items);
    index_free(&p->history.ix);
    for (size_t i = 0; i < p->contacts.n; i++) { Py_DECREF(p->contacts.items[i].src); Py_DECREF(p->contacts.items[i].dst); }
    PyMem_Free(p->contacts.items);
    index_free(&p->contacts.ix);
    Py_CLEAR(p->recent[0].value);
    Py_CLEAR(p->recent[1].value);
    if (p->addresses) {
        for (size_t i = 0; i < p->naddresses; i++) Py_XDECREF(p->addresses[i].value);
        PyMem_Free(p->addresses);
    }
    index_free(&p->address_ix);
    for (int i = 0; i < p->nprotos; i++) Py_DECREF(p->protos[i]);
    for (int i = 0; i < PORT_TUPLES; i++) Py_XDECREF(p->port_tuples[i]);
    Py_XDECREF(p->close_pair); Py_XDECREF(p->close_sweep); Py_XDECREF(p->make_candidate);
    Py_XDECREF(p->bad_timestamp); Py_XDECREF(p->clock); Py_XDECREF(p->fallback);
    Py_XDECREF(p->syslog_method); Py_XDECREF(p->iso_method);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyMethodDef Pipeline_methods[] = {
    {"start_file", (PyCFunction)Pipeline_start_file, METH_VARARGS,
     "start_file(clock, fallback): read a new stream with this LineClock; fallback(line) parses a line in Python"},
    {"feed", (PyCFunction)Pipeline_feed, METH_O, "feed(bytes): whole lines of the stream"},
    {"end_file", (PyCFunction)Pipeline_end_file, METH_NOARGS, "end_file(): hand the boot anchor back to the clock"},
    {"finish", (PyCFunction)Pipeline_finish, METH_NOARGS, "finish(): end of input, judge every open episode"},
    {"take_contacts", (PyCFunction)Pipeline_take_contacts, METH_NOARGS,
     "take_contacts() -> {(src, proto, dst, dport): [first, last]}, and start afresh"},
    {"take_skips", (PyCFunction)Pipeline_take_skips, METH_NOARGS, "take_skips() -> {reason: lines}, and start afresh"},
    {NULL}
};

static PyGetSetDef Pipeline_getset[] = {
    {"lines", (getter)Pipeline_get_lines, NULL, "lines read", NULL},
    {"packets", (getter)Pipeline_get_packets, NULL, "packet records found", NULL},
    {"contacts", (getter)Pipeline_get_contacts, NULL, "contacts held", NULL},
    {NULL}
};

static PyTypeObject PipelineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "appliance.fastlane._fastlane.Pipeline",
    .tp_basicsize = sizeof(Pipeline),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "parse -> detect -> attribute over kernel log text (see appliance/fastlane)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pipeline_init,
    .tp_dealloc = (destructor)Pipeline_dealloc,
    .tp_methods = Pipeline_methods,
    .tp_getset = Pipeline_getset,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastlane", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__fastlane(void) {
    if (PyType_Ready(&PipelineType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Pipeline", (PyObject *)&PipelineType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
