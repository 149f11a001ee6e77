/* line_fields(block) in C: the compiled twin of appliance/parse/netfilter.py's py_line_fields.
 *
 * One job: a block of whole lines (bytes) in; per non-empty line, either the fields of a valid
 * record in the common layout, `((syslog, iso, kmsg, uptime), src, dst, proto, sport, dport,
 * direction, prefix)`, or the line itself (str, undecodable bytes replaced). Times stay texts (the
 * uptime a number, as float() reads it): the Python clock turns them into instants. Any line this code is not sure about (another layout,
 * an address form other than the kernel's, non-ASCII where it matters, a field out of range) is
 * handed back whole, and the Python parser reads it: the packets come out the same either way,
 * which tests/test_parse.py checks under both twins.
 *
 * The rules below are those of the chunk pattern (_CHUNK_RX with _FAST_BODY) and record_fields().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NOT_SURE NULL  /* returned without an exception set: hand the line back */

static PyObject *DIR_IN, *DIR_OUT, *DIR_FWD;

/* Texts that repeat from line to line (a scan is a run of one source and one destination, a
 * prefix alternates between a few values, a second holds many records): the last object made for
 * each is reused, which also spares Python hashing the same text again. */
typedef struct {
    char raw[64];
    Py_ssize_t len;
    PyObject *value;
} Recent;
enum { RECENT_SRC, RECENT_DST, RECENT_STAMP, RECENT_PREFIX, RECENT_PROTO = RECENT_PREFIX + 4, RECENTS = RECENT_PROTO + 4 };
static Recent recent[RECENTS];

/* The object for `raw` in one of `n` slots starting at `first`, made by `make` if none holds it. */
static PyObject *reused(int first, int n, const char *raw, Py_ssize_t len, PyObject *(*make)(const char *, Py_ssize_t)) {
    if (len >= (Py_ssize_t)sizeof recent[0].raw) return make(raw, len);
    for (int i = first; i < first + n; i++)
        if (recent[i].value && recent[i].len == len && memcmp(recent[i].raw, raw, (size_t)len) == 0)
            return Py_NewRef(recent[i].value);
    PyObject *value = make(raw, len);
    if (!value || value == Py_None) return value;
    /* Replace the oldest: shift the slots down, newest first. */
    Py_XDECREF(recent[first + n - 1].value);
    memmove(&recent[first + 1], &recent[first], (size_t)(n - 1) * sizeof(Recent));
    memcpy(recent[first].raw, raw, (size_t)len);
    recent[first].len = len;
    recent[first].value = Py_NewRef(value);
    return value;
}

static PyObject *ascii_text(const char *s, Py_ssize_t n) { return PyUnicode_DecodeASCII(s, n, NULL); }

static PyObject *interned_text(const char *s, Py_ssize_t n) {
    PyObject *text = PyUnicode_DecodeASCII(s, n, NULL);
    if (text) PyUnicode_InternInPlace(&text);
    return text;
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static inline int is_alnum(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }
/* str.strip()'s whitespace among ASCII characters */
static inline int is_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

static int all_ascii(const char *s, const char *end) {
    for (; s < end; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

static const char *find(const char *s, const char *end, const char *needle, size_t n) {
    if (end - s < (Py_ssize_t)n) return NULL;
    return memmem(s, (size_t)(end - s), needle, n);
}

/* `[^ \n]+` then one space: the position after the space, or NULL */
static const char *token_and_space(const char *s, const char *end) {
    const char *t = memchr(s, ' ', (size_t)(end - s));
    return (t && t > s) ? t + 1 : NULL;
}

static const char *digits(const char *s, const char *end) {
    const char *t = s;
    while (t < end && is_digit((unsigned char)*t)) t++;
    return t;
}

/* `[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}` (15 characters) */
static int syslog_stamp(const char *s, const char *end) {
    const unsigned char *u = (const unsigned char *)s;
    return end - s >= 15 && u[0] >= 'A' && u[0] <= 'Z' && u[1] >= 'a' && u[1] <= 'z' && u[2] >= 'a' && u[2] <= 'z'
        && u[3] == ' ' && (u[4] == ' ' || is_digit(u[4])) && is_digit(u[5]) && u[6] == ' ' && is_digit(u[7])
        && is_digit(u[8]) && u[9] == ':' && is_digit(u[10]) && is_digit(u[11]) && u[12] == ':'
        && is_digit(u[13]) && is_digit(u[14]);
}

/* `[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?`:
 * its end, or NULL */
static const char *iso_stamp(const char *s, const char *end) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    const unsigned char *u = (const unsigned char *)s;
    if (end - s < 19) return NULL;
    for (int i = 0; i < 19; i++) {
        if (shape[i] == 'd') { if (!is_digit(u[i])) return NULL; }
        else if (shape[i] == 'T') { if (u[i] != 'T' && u[i] != ' ') return NULL; }
        else if (u[i] != (unsigned char)shape[i]) return NULL;
    }
    const char *t = s + 19;
    if (t + 1 < end && *t == '.' && is_digit((unsigned char)t[1])) t = digits(t + 1, end);
    if (t < end && *t == 'Z') return t + 1;
    if (t < end && (*t == '+' || *t == '-')) {
        const char *z = t + 1;
        if (end - z >= 2 && is_digit((unsigned char)z[0]) && is_digit((unsigned char)z[1])) {
            z += 2;
            if (z < end && *z == ':') z++;
            if (end - z >= 2 && is_digit((unsigned char)z[0]) && is_digit((unsigned char)z[1])) return z + 2;
        }
    }
    return t;  /* no zone (the pattern backtracks to none; the space after it decides) */
}

/* The kernel's fully expanded IPv6 form (39 characters) as inet_ntop writes it: lower case, no
 * leading zeros, the first longest run of two or more zero groups as "::". The forms inet_ntop
 * writes with an IPv4 tail are left to Python. */
static PyObject *expanded_ipv6(const char *s, Py_ssize_t n) {
    unsigned words[8];
    if (n != 39) return Py_NewRef(Py_None);
    for (int g = 0; g < 8; g++) {
        const char *t = s + g * 5;
        if (g < 7 && t[4] != ':') return Py_NewRef(Py_None);
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
            unsigned char c = (unsigned char)t[i];
            if (!is_hex(c)) return Py_NewRef(Py_None);
            v = v * 16 + (is_digit(c) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10));
        }
        words[g] = v;
    }
    if (!(words[0] | words[1] | words[2] | words[3] | words[4]) && (words[5] == 0 || words[5] == 0xffff))
        return Py_NewRef(Py_None);
    int best = -1, best_len = 1;
    for (int g = 0; g < 8;) {
        if (words[g]) { g++; continue; }
        int run = g;
        while (g < 8 && !words[g]) g++;
        if (g - run > best_len) { best = run; best_len = g - run; }
    }
    static const char HEX[] = "0123456789abcdef";
    char text[40], *o = text;
    for (int g = 0; g < 8; g++) {
        if (g == best) {
            *o++ = ':';
            if (g == 0) *o++ = ':';
            g += best_len - 1;
            continue;
        }
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (words[g] >> shift) & 15;
            if (d || started || shift == 0) { *o++ = HEX[d]; started = 1; }
        }
        if (g < 7) *o++ = ':';
    }
    return PyUnicode_DecodeASCII(text, o - text, NULL);
}

/* A dotted quad as ipaddress spells it (no leading zeros, each part up to 255): itself. */
static PyObject *plain_ipv4(const char *s, Py_ssize_t n) {
    const char *t = s, *end = s + n;
    for (int part = 0; part < 4; part++) {
        const char *d = digits(t, end);
        if (d == t || d - t > 3 || (d - t > 1 && *t == '0')) return Py_NewRef(Py_None);
        int v = 0;
        for (const char *q = t; q < d; q++) v = v * 10 + (*q - '0');
        if (v > 255) return Py_NewRef(Py_None);
        if (part < 3) {
            if (d >= end || *d != '.') return Py_NewRef(Py_None);
            t = d + 1;
        } else if (d != end) {
            return Py_NewRef(Py_None);
        }
    }
    return PyUnicode_DecodeASCII(s, n, NULL);
}

static PyObject *address(const char *s, Py_ssize_t n) {
    return memchr(s, ':', (size_t)n) ? expanded_ipv6(s, n) : plain_ipv4(s, n);
}

/* `[0-9a-fA-F:.]+` up to the next space: its end, or NULL */
static const char *address_token(const char *s, const char *end) {
    const char *t = s;
    while (t < end && (is_hex((unsigned char)*t) || *t == ':' || *t == '.')) t++;
    return (t > s && t < end && *t == ' ') ? t : NULL;
}

/* record_fields()'s protocol check: a name the kernel prints, or a number up to 255. */
static int known_protocol(const char *s, Py_ssize_t n) {
    static const char *NAMES[] = {"TCP", "UDP", "UDPLITE", "SCTP", "DCCP", "ICMP", "ICMPv6", "AH", "ESP"};
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if ((Py_ssize_t)strlen(NAMES[i]) == n && memcmp(NAMES[i], s, (size_t)n) == 0) return 1;
    if (n > 3) return 0;
    int v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 255;
}

static int ported(const char *s, Py_ssize_t n) {
    static const char *PORTED[] = {"TCP", "UDP", "UDPLITE", "SCTP", "DCCP"};
    for (int i = 0; i < 5; i++)
        if ((Py_ssize_t)strlen(PORTED[i]) == n && memcmp(PORTED[i], s, (size_t)n) == 0) return 1;
    return 0;
}

/* `[0-9]+` as a port (at most 65535), or -1 */
static long port_value(const char *s, const char *end) {
    if (end - s > 5) return -1;
    long v = 0;
    for (; s < end; s++) v = v * 10 + (*s - '0');
    return v <= 65535 ? v : -1;
}

static PyObject *port_or_none(long port) { return port < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(port); }

static PyObject *text_or_none(const char *s, const char *end) {
    return s ? PyUnicode_DecodeASCII(s, end - s, NULL) : Py_NewRef(Py_None);
}

/* `[0-9]+\.[0-9]+` as float() reads it (the same conversion: PyOS_string_to_double) */
static PyObject *number_or_none(const char *s, const char *end) {
    char text[64];
    if (!s) return Py_NewRef(Py_None);
    if (end - s >= (Py_ssize_t)sizeof text) return NOT_SURE;
    memcpy(text, s, (size_t)(end - s));
    text[end - s] = 0;
    double value = PyOS_string_to_double(text, NULL, NULL);
    return (value == -1.0 && PyErr_Occurred()) ? NULL : PyFloat_FromDouble(value);
}

/* A tuple of `n` new references, all of which it takes; NULL (and all released) if one is NULL. */
static PyObject *tuple_of(int n, PyObject **items) {
    PyObject *tuple = NULL;
    for (int i = 0; i < n; i++)
        if (!items[i]) goto fail;
    if (!(tuple = PyTuple_New(n))) goto fail;
    for (int i = 0; i < n; i++) PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
fail:
    for (int i = 0; i < n; i++) Py_XDECREF(items[i]);
    return NULL;
}

/* One line: its fields (a new tuple), NOT_SURE, or NULL with an exception set. */
static PyObject *record(const char *line, const char *end) {
    const char *s = line, *syslog = NULL, *iso = NULL, *iso_end = NULL, *kmsg = NULL, *kmsg_end = NULL;
    const char *uptime = NULL, *uptime_end = NULL;

    /* The wrapper. */
    if (syslog_stamp(s, end)) {
        syslog = s;
        if (end - s < 17 || s[15] != ' ' || !(s = token_and_space(s + 16, end))) return NOT_SURE;
        if (end - s >= 8 && memcmp(s, "kernel: ", 8) == 0) s += 8;
    } else if (is_digit((unsigned char)*s)) {
        const char *t = iso_stamp(s, end);
        if (t && t < end && *t == ' ') {
            iso = s;
            iso_end = t;
            if (!(s = token_and_space(t + 1, end))) return NOT_SURE;
            if (end - s >= 8 && memcmp(s, "kernel: ", 8) == 0) s += 8;
        } else {  /* /dev/kmsg: `[0-9]+,[0-9]+,(usec),[^;]*;` */
            const char *a = digits(s, end);
            if (a == s || a >= end || *a != ',') return NOT_SURE;
            const char *b = digits(a + 1, end);
            if (b == a + 1 || b >= end || *b != ',') return NOT_SURE;
            kmsg = b + 1;
            kmsg_end = digits(kmsg, end);
            if (kmsg_end == kmsg || kmsg_end >= end || *kmsg_end != ',') return NOT_SURE;
            const char *semi = memchr(kmsg_end, ';', (size_t)(end - kmsg_end));
            if (!semi) return NOT_SURE;
            s = semi + 1;
        }
    }
    if (s < end && *s == '[') {  /* `\[ *([0-9]+\.[0-9]+)\] ` then maybe `[^ ]+ kernel: ` */
        const char *t = s + 1;
        while (t < end && *t == ' ') t++;
        uptime = t;
        t = digits(t, end);
        if (t == uptime || t >= end || *t != '.') return NOT_SURE;
        const char *fraction = t + 1;
        t = digits(fraction, end);
        if (t == fraction || end - t < 2 || t[0] != ']' || t[1] != ' ') return NOT_SURE;
        uptime_end = t;
        s = t + 2;
        const char *host = token_and_space(s, end);
        if (host && end - host >= 8 && memcmp(host, "kernel: ", 8) == 0) s = host + 8;
    }
    if (!syslog && !iso && !kmsg && !uptime) return NOT_SURE;  /* maybe a wrapper further in */
    if (uptime && uptime_end - uptime >= 64) return NOT_SURE;

    /* The body: `prefix IN=iif OUT=oif (MAC=... )?SRC=a DST=b ...PROTO=p( SPT=n DPT=n| TYPE=n)?rest` */
    const char *in = find(s, end, "IN=", 3);
    if (!in) return NOT_SURE;
    const char *t = in + 3, *iif = t;
    while (t < end && *t != ' ') t++;
    int has_iif = t > iif;
    if (end - t < 5 || memcmp(t, " OUT=", 5) != 0) return NOT_SURE;
    const char *oif = t += 5;
    while (t < end && *t != ' ') t++;
    int has_oif = t > oif;
    if (t >= end) return NOT_SURE;
    t++;
    if (end - t >= 4 && memcmp(t, "MAC=", 4) == 0) {
        t = memchr(t + 4, ' ', (size_t)(end - t - 4));
        if (!t) return NOT_SURE;
        t++;
    }
    if (end - t < 4 || memcmp(t, "SRC=", 4) != 0) return NOT_SURE;
    const char *src = t + 4, *src_end = address_token(src, end);
    if (!src_end || end - src_end < 5 || memcmp(src_end, " DST=", 5) != 0) return NOT_SURE;
    const char *dst = src_end + 5, *dst_end = address_token(dst, end);
    if (!dst_end) return NOT_SURE;
    /* Greedy `[^\n]*PROTO=`: the last PROTO= followed by a name. */
    const char *after = dst_end + 1, *proto = NULL;
    for (const char *q = end - 7; q >= after; q--) {
        if (*q == 'P' && memcmp(q, "PROTO=", 6) == 0 && is_alnum((unsigned char)q[6])) {
            proto = q + 6;
            break;
        }
    }
    if (!proto) return NOT_SURE;
    const char *proto_end = proto;
    while (proto_end < end && is_alnum((unsigned char)*proto_end)) proto_end++;
    const char *rest = proto_end;
    long sport = -1, dport = -1;
    int has_ports = 0;
    if (end - rest >= 5 && memcmp(rest, " SPT=", 5) == 0) {
        const char *a = digits(rest + 5, end);
        if (a > rest + 5 && end - a >= 5 && memcmp(a, " DPT=", 5) == 0) {
            const char *b = digits(a + 5, end);
            if (b > a + 5) {
                sport = port_value(rest + 5, a);
                dport = port_value(a + 5, b);
                if (sport < 0 || dport < 0) return NOT_SURE;  /* bad-port: Python counts it */
                has_ports = 1;
                rest = b;
            }
        }
    }
    if (!has_ports && end - rest >= 6 && memcmp(rest, " TYPE=", 6) == 0) {
        const char *a = digits(rest + 6, end);
        if (a > rest + 6) {
            dport = port_value(rest + 6, a);
            if (dport < 0) return NOT_SURE;
            has_ports = 1;
        }
    }
    Py_ssize_t proto_len = proto_end - proto;
    if (!known_protocol(proto, proto_len)) return NOT_SURE;
    if (!has_ports && ported(proto, proto_len)) {
        /* _cut_short(): after the name, only (str.strip) whitespace or an INCOMPLETE note */
        if (rest == end || !all_ascii(rest, end)) return NOT_SURE;
        const char *w = rest;
        while (w < end && is_space((unsigned char)*w)) w++;
        if (w < end && !find(rest, end, "INCOMPLETE", 10)) return NOT_SURE;
    }
    /* prefix.strip() */
    const char *p = s, *p_end = in;
    if (!all_ascii(p, p_end)) return NOT_SURE;
    while (p < p_end && is_space((unsigned char)*p)) p++;
    while (p_end > p && is_space((unsigned char)p_end[-1])) p_end--;

    PyObject *source = reused(RECENT_SRC, 1, src, src_end - src, address);
    PyObject *target = source && source != Py_None ? reused(RECENT_DST, 1, dst, dst_end - dst, address) : NULL;
    if (!source || !target || source == Py_None || target == Py_None) {
        int failed = PyErr_Occurred() != NULL;
        Py_XDECREF(source);
        Py_XDECREF(target);
        return failed ? NULL : NOT_SURE;  /* not the kernel's spelling: Python says what it is */
    }
    PyObject *when[4] = {syslog ? reused(RECENT_STAMP, 1, syslog, 15, ascii_text) : Py_NewRef(Py_None),
                         text_or_none(iso, iso_end), text_or_none(kmsg, kmsg_end),
                         number_or_none(uptime, uptime_end)};
    PyObject *fields[8] = {
        tuple_of(4, when), source, target, reused(RECENT_PROTO, 4, proto, proto_len, interned_text),
        port_or_none(has_ports && sport >= 0 ? sport : -1), port_or_none(has_ports ? dport : -1),
        Py_NewRef(has_iif ? (has_oif ? DIR_FWD : DIR_IN) : DIR_OUT),
        reused(RECENT_PREFIX, 4, p, p_end - p, ascii_text)};
    return tuple_of(8, fields);
}

static PyObject *line_fields(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *items = PyList_New(0);
    const char *s = view.buf, *end = s + view.len;
    while (items && s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        if (eol > s) {
            PyObject *item = record(s, eol);
            if (!item && !PyErr_Occurred()) item = PyUnicode_DecodeUTF8(s, eol - s, "replace");
            if (!item || PyList_Append(items, item) < 0) Py_CLEAR(items);
            Py_XDECREF(item);
        }
        s = eol + 1;
    }
    PyBuffer_Release(&view);
    return items;
}

static PyMethodDef METHODS[] = {
    {"line_fields", line_fields, METH_O,
     "line_fields(block) -> list: the fields of each record in the common layout, or the line itself."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__speedups(void) {
    /* The direction words are compared by identity (`direction is INBOUND`): the same interned
     * objects as the constants in appliance/packet.py. */
    DIR_IN = PyUnicode_InternFromString("in");
    DIR_OUT = PyUnicode_InternFromString("out");
    DIR_FWD = PyUnicode_InternFromString("fwd");
    if (!DIR_IN || !DIR_OUT || !DIR_FWD) return NULL;
    return PyModule_Create(&MODULE);
}
