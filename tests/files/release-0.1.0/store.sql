-- A store written by HarvestWatch 0.1.0 (schema 5): tests/web_store.py's realistic store
-- at 2026-12-01 12:00 UTC, dumped with sqlite3's iterdump. tests/test_upgrade.py opens it with
-- this release. Never edit: add the store of the next release beside it.
BEGIN TRANSACTION;
CREATE TABLE candidates (
        scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        ts REAL NOT NULL,
        src TEXT NOT NULL,
        sport INTEGER,
        dst TEXT NOT NULL,
        dport INTEGER,
        proto TEXT NOT NULL,
        lag REAL NOT NULL,              -- scan start - ts
        rank INTEGER,                   -- 1 = most likely trigger of this scan
        UNIQUE (scan_id, ts, src, sport, dst, dport, proto)
    );
INSERT INTO "candidates" VALUES(1,1796108400.003,'2001:db8:e625:1:ad0b:e1:5ee:f001',40123,'2001:db8:f00d::123',123,'UDP',5.09699988365173339843e+00,1);
INSERT INTO "candidates" VALUES(3,1796120960.0,'2001:db8:e625:1:4c1e:9a2b:77d0:3f15',51234,'2001:db8:77:1::443',443,'TCP',40.0,1);
INSERT INTO "candidates" VALUES(3,1796120987.6,'2001:db8:e625:1:4c1e:9a2b:77d0:3f15',53001,'2001:db8:e625:1::1',53,'UDP',1.24000000953674316406e+01,3);
INSERT INTO "candidates" VALUES(3,1796120988.1,'2001:db8:e625:1:4c1e:9a2b:77d0:3f15',123,'2001:db8:a3::123',123,'UDP',1.1900000095367431641e+01,2);
INSERT INTO "candidates" VALUES(4,1796123968.8,'2001:db8:e625:1:91f3:2b6:e0c4:8a21',53002,'2001:db8:e625:1::1',53,'UDP',3.12000000476837158203e+01,2);
INSERT INTO "candidates" VALUES(4,1796123969.2,'2001:db8:e625:1:91f3:2b6:e0c4:8a21',123,'2001:db8:a3::123',123,'UDP',3.07999999523162841801e+01,1);
INSERT INTO "candidates" VALUES(2,1796108400.0,'2001:db8:e625:1:ad0b:e1:5ee:f001',40123,'2001:db8:f00d::123',123,'UDP',10800.0,1);
CREATE TABLE contacts (
        src TEXT NOT NULL, proto TEXT NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL,
        first_ts REAL NOT NULL, last_ts REAL NOT NULL,
        PRIMARY KEY (src, proto, dst, dport)
    ) WITHOUT ROWID;
INSERT INTO "contacts" VALUES('2001:db8:e625:1:4c1e:9a2b:77d0:3f15','TCP','2001:db8:77:1::443',443,1796120960.0,1796120960.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:4c1e:9a2b:77d0:3f15','UDP','2001:db8:a3::123',123,1796120988.1,1796120988.1);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:4c1e:9a2b:77d0:3f15','UDP','2001:db8:e625:1::1',53,1796120987.6,1796120987.6);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:77aa:0:0:1','UDP','2001:db8:a3::123',123,1796119400.0,1796119400.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:77aa:0:0:1','UDP','2001:db8:e625:1::1',53,1796119399.0,1796119399.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:77aa:0:0:2','UDP','2001:db8:a1::123',123,1796119401.0,1796119401.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:77aa:0:0:2','UDP','2001:db8:e625:1::1',53,1796119400.0,1796119400.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:77aa:0:0:3','UDP','2001:db8:a2::123',123,1796119402.0,1796119402.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:77aa:0:0:3','UDP','2001:db8:e625:1::1',53,1796119401.0,1796119401.0);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:91f3:2b6:e0c4:8a21','UDP','2001:db8:a3::123',123,1796123969.2,1796123969.2);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:91f3:2b6:e0c4:8a21','UDP','2001:db8:e625:1::1',53,1796123968.8,1796123968.8);
INSERT INTO "contacts" VALUES('2001:db8:e625:1:ad0b:e1:5ee:f001','UDP','2001:db8:f00d::123',123,1796108400.003,1796108400.003);
CREATE TABLE gaps (
        id INTEGER PRIMARY KEY,
        start REAL NOT NULL, end REAL NOT NULL,
        reason TEXT NOT NULL,           -- daemon-down | daemon-stopped | overrun | seq-gap | flood-limit
        lost INTEGER,                   -- packets known lost; NULL when unknown
        UNIQUE (start, reason)
    );
INSERT INTO "gaps" VALUES(1,1796104200.0,1796104800.0,'daemon-down',NULL);
INSERT INTO "gaps" VALUES(2,1796122800.0,1796122800.0,'seq-gap',3);
INSERT INTO "gaps" VALUES(3,1796125800.0,1796125800.0,'flood-limit',120);
CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,
        finished REAL,
        sources TEXT NOT NULL,          -- JSON list of file names
        parameters TEXT NOT NULL,       -- JSON: min_ports, window, lookback, ...
        lines INTEGER, records INTEGER,
        skipped TEXT                    -- JSON {reason: count}
    );
INSERT INTO "imports" VALUES(1,1.79622143646648740767e+09,1.79622143646652054783e+09,'["/var/log/kern.log.1"]','{"min_ports": 10, "window": 60.0}',2000,1984,'{"not-netfilter": 14, "truncated": 2}');
CREATE TABLE pinholes (
        probe_id INTEGER NOT NULL REFERENCES probes(id),
        proto TEXT NOT NULL,            -- tcp | udp
        port INTEGER NOT NULL,
        uid INTEGER,                    -- the router's id of it; NULL while it is not granted
        opened REAL,                    -- granted at (the latest grant)
        held_until REAL,                -- the lease runs to here (each renewal moves it on)
        lapsed REAL,                    -- first found gone before its window ended: not held throughout
        closed REAL,                    -- given back at the window's end
        error TEXT,                     -- why it was refused or lost
        PRIMARY KEY (probe_id, proto, port)
    ) WITHOUT ROWID;
CREATE TABLE pool_members (
        pool TEXT NOT NULL,
        address TEXT NOT NULL,
        first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        PRIMARY KEY (pool, address)
    ) WITHOUT ROWID;
INSERT INTO "pool_members" VALUES('0.pool.lab.test','2001:db8:a1::123',1796104800.0,1796125500.0);
INSERT INTO "pool_members" VALUES('0.pool.lab.test','2001:db8:a3::123',1796104800.0,1796125500.0);
INSERT INTO "pool_members" VALUES('0.pool.lab.test','2001:db8:a5::123',1796104800.0,1796104800.0);
INSERT INTO "pool_members" VALUES('0.pool.lab.test','2001:db8:f00d::123',1796104800.0,1796125500.0);
INSERT INTO "pool_members" VALUES('1.pool.lab.test','2001:db8:a2::123',1796104800.0,1796125500.0);
INSERT INTO "pool_members" VALUES('1.pool.lab.test','2001:db8:a4::123',1796104800.0,1796104800.0);
INSERT INTO "pool_members" VALUES('1.pool.lab.test','2001:db8:f00d::123',1796104800.0,1796125500.0);
CREATE TABLE probes (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,   -- the fresh /128: one address, one server, ever
        server TEXT NOT NULL,
        kind TEXT NOT NULL,             -- ntp | udp123 | udp321
        port INTEGER NOT NULL,
        planned REAL NOT NULL,          -- written and committed before the packet leaves
        sent_at REAL,                   -- NULL: the packet never left (see error)
        sport INTEGER,
        expires REAL NOT NULL,          -- end of the observation window (the address's valid_lft)
        stratum INTEGER, offset REAL, delay REAL,
        error TEXT
    , reach TEXT, reach_note TEXT);
INSERT INTO "probes" VALUES(1,'2001:db8:e625:1:ad0b:e1:5ee:f000','2001:db8:a2::123','ntp',123,1795867199.8,1795867200.0,40100,1795870800.0,2,0.0041,0.0212,NULL,'declared',NULL);
INSERT INTO "probes" VALUES(2,'2001:db8:e625:1:ad0b:e1:5ee:efff','2001:db8:a5::123','udp123',123,1795953599.8,1795953600.0,40101,1795957200.0,NULL,NULL,NULL,NULL,'none','the router lets nothing unsolicited in');
INSERT INTO "probes" VALUES(3,'2001:db8:e625:1:ad0b:e1:5ee:f001','2001:db8:f00d::123','ntp',123,1796108399.8,1796108400.0,40123,1796281200.0,2,0.0034,0.0181,NULL,'declared',NULL);
INSERT INTO "probes" VALUES(4,'2001:db8:e625:1:ad0b:e1:5ee:f002','2001:db8:a1::123','udp123',123,1796111999.8,1796112000.0,40124,1796284800.0,NULL,NULL,NULL,NULL,'declared',NULL);
INSERT INTO "probes" VALUES(5,'2001:db8:e625:1:ad0b:e1:5ee:f003','2001:db8:a2::123','udp321',321,1796115599.8,1796115600.0,40125,1796288400.0,NULL,NULL,NULL,NULL,'declared',NULL);
INSERT INTO "probes" VALUES(6,'2001:db8:e625:1:ad0b:e1:5ee:f004','2001:db8:a1::123','ntp',123,1796119199.8,1796119200.0,40126,1796292000.0,1,-0.0012,0.0093,NULL,'declared',NULL);
INSERT INTO "probes" VALUES(7,'2001:db8:e625:1:ad0b:e1:5ee:f005','2001:db8:a4::123','ntp',123,1796122800.0,NULL,NULL,1796295600.0,NULL,NULL,NULL,'network unreachable',NULL,NULL);
CREATE TABLE scanner_names (
        address TEXT PRIMARY KEY, name TEXT, checked REAL NOT NULL
    ) WITHOUT ROWID;
INSERT INTO "scanner_names" VALUES('2001:db8:5ca0:10::89da:a001','scan-1.research.example',1796126400.0);
INSERT INTO "scanner_names" VALUES('2001:db8:5ca1:10::943f:b001',NULL,1796126400.0);
CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,             -- portscan | sweep
        scanner TEXT NOT NULL,
        scanner_net TEXT NOT NULL,      -- /64 (IPv6) or /24 (IPv4): the scanner family
        target TEXT NOT NULL,           -- '*' for sweeps
        start REAL NOT NULL,
        end REAL NOT NULL,
        packets INTEGER NOT NULL,
        port_count INTEGER NOT NULL,
        ports TEXT NOT NULL,            -- JSON [[proto, port], ...]
        protocols TEXT NOT NULL,        -- JSON {proto: distinct ports}
        targets TEXT NOT NULL,          -- JSON list (sweeps)
        attribution TEXT NOT NULL DEFAULT 'unattributed',
        import_id INTEGER REFERENCES imports(id), probe_id INTEGER REFERENCES probes(id),
        UNIQUE (kind, scanner, target, start)
    );
INSERT INTO "scans" VALUES(1,'portscan','2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','2001:db8:e625:1:ad0b:e1:5ee:f001',1796108405.1,1.79610840569999980929e+09,99,96,'[["TCP", 21], ["TCP", 22], ["TCP", 23], ["TCP", 25], ["TCP", 53], ["TCP", 80], ["TCP", 81], ["TCP", 110], ["TCP", 111], ["TCP", 135], ["TCP", 139], ["TCP", 143], ["TCP", 179], ["TCP", 389], ["TCP", 443], ["TCP", 445], ["TCP", 465], ["TCP", 502], ["TCP", 587], ["TCP", 631], ["TCP", 873], ["TCP", 993], ["TCP", 995], ["TCP", 1025], ["TCP", 1080], ["TCP", 1433], ["TCP", 1521], ["TCP", 1723], ["TCP", 1883], ["TCP", 2000], ["TCP", 2049], ["TCP", 2082], ["TCP", 2083], ["TCP", 2222], ["TCP", 2375], ["TCP", 2376], ["TCP", 3000], ["TCP", 3128], ["TCP", 3306], ["TCP", 3389], ["TCP", 4443], ["TCP", 4567], ["TCP", 5000], ["TCP", 5060], ["TCP", 5432], ["TCP", 5555], ["TCP", 5601], ["TCP", 5900], ["TCP", 5984], ["TCP", 6000], ["TCP", 6379], ["TCP", 6443], ["TCP", 7001], ["TCP", 7547], ["TCP", 8000], ["TCP", 8008], ["TCP", 8080], ["TCP", 8081], ["TCP", 8088], ["TCP", 8443], ["TCP", 8888], ["TCP", 9000], ["TCP", 9042], ["TCP", 9090], ["TCP", 9100], ["TCP", 9200], ["UDP", 53], ["UDP", 67], ["UDP", 69], ["UDP", 111], ["UDP", 123], ["UDP", 137], ["UDP", 161], ["UDP", 177], ["UDP", 389], ["UDP", 500], ["UDP", 623], ["UDP", 1194], ["UDP", 1434], ["UDP", 1604], ["UDP", 1900], ["UDP", 2049], ["UDP", 3478], ["UDP", 3702], ["UDP", 4500], ["UDP", 5060], ["UDP", 5093], ["UDP", 5351], ["UDP", 5353], ["UDP", 5683], ["UDP", 10001], ["UDP", 11211], ["UDP", 17185], ["UDP", 20000], ["UDP", 27015], ["UDP", 32414]]','{"TCP": 66, "UDP": 30}','[]','certain',NULL,3);
INSERT INTO "scans" VALUES(2,'portscan','2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','2001:db8:e625:1:ad0b:e1:5ee:f001',1796119200.0,1796119200.6,43,40,'[["TCP", 21], ["TCP", 22], ["TCP", 23], ["TCP", 25], ["TCP", 53], ["TCP", 80], ["TCP", 81], ["TCP", 110], ["TCP", 111], ["TCP", 135], ["TCP", 139], ["TCP", 143], ["TCP", 179], ["TCP", 389], ["TCP", 443], ["TCP", 445], ["TCP", 465], ["TCP", 502], ["TCP", 587], ["TCP", 631], ["TCP", 873], ["TCP", 993], ["TCP", 995], ["TCP", 1025], ["TCP", 1080], ["TCP", 1433], ["TCP", 1521], ["TCP", 1723], ["TCP", 1883], ["TCP", 2000], ["TCP", 2049], ["TCP", 2082], ["TCP", 2083], ["TCP", 2222], ["TCP", 2375], ["TCP", 2376], ["TCP", 3000], ["TCP", 3128], ["TCP", 3306], ["TCP", 3389]]','{"TCP": 40}','[]','certain',NULL,3);
INSERT INTO "scans" VALUES(3,'portscan','2001:db8:5ca2:10::12fd:a001','2001:db8:5ca2:10::/64','2001:db8:e625:1:4c1e:9a2b:77d0:3f15',1796121000.0,1796121000.6,87,84,'[["TCP", 21], ["TCP", 22], ["TCP", 23], ["TCP", 25], ["TCP", 53], ["TCP", 80], ["TCP", 81], ["TCP", 110], ["TCP", 111], ["TCP", 135], ["TCP", 139], ["TCP", 143], ["TCP", 179], ["TCP", 389], ["TCP", 443], ["TCP", 445], ["TCP", 465], ["TCP", 502], ["TCP", 587], ["TCP", 631], ["TCP", 873], ["TCP", 993], ["TCP", 995], ["TCP", 1025], ["TCP", 1080], ["TCP", 1433], ["TCP", 1521], ["TCP", 1723], ["TCP", 1883], ["TCP", 2000], ["TCP", 2049], ["TCP", 2082], ["TCP", 2083], ["TCP", 2222], ["TCP", 2375], ["TCP", 2376], ["TCP", 3000], ["TCP", 3128], ["TCP", 3306], ["TCP", 3389], ["TCP", 4443], ["TCP", 4567], ["TCP", 5000], ["TCP", 5060], ["TCP", 5432], ["TCP", 5555], ["TCP", 5601], ["TCP", 5900], ["TCP", 5984], ["TCP", 6000], ["TCP", 6379], ["TCP", 6443], ["TCP", 7001], ["TCP", 7547], ["TCP", 8000], ["TCP", 8008], ["TCP", 8080], ["TCP", 8081], ["TCP", 8088], ["TCP", 8443], ["TCP", 8888], ["TCP", 9000], ["TCP", 9042], ["TCP", 9090], ["TCP", 9100], ["TCP", 9200], ["UDP", 53], ["UDP", 67], ["UDP", 69], ["UDP", 111], ["UDP", 123], ["UDP", 137], ["UDP", 161], ["UDP", 177], ["UDP", 389], ["UDP", 500], ["UDP", 623], ["UDP", 1194], ["UDP", 1434], ["UDP", 1604], ["UDP", 1900], ["UDP", 2049], ["UDP", 3478], ["UDP", 3702]]','{"TCP": 66, "UDP": 18}','[]','candidate',NULL,NULL);
INSERT INTO "scans" VALUES(4,'portscan','2001:db8:5ca2:10::12fd:a002','2001:db8:5ca2:10::/64','2001:db8:e625:1:91f3:2b6:e0c4:8a21',1796124000.0,1796124000.6,75,72,'[["TCP", 21], ["TCP", 22], ["TCP", 23], ["TCP", 25], ["TCP", 53], ["TCP", 80], ["TCP", 81], ["TCP", 110], ["TCP", 111], ["TCP", 135], ["TCP", 139], ["TCP", 143], ["TCP", 179], ["TCP", 389], ["TCP", 443], ["TCP", 445], ["TCP", 465], ["TCP", 502], ["TCP", 587], ["TCP", 631], ["TCP", 873], ["TCP", 993], ["TCP", 995], ["TCP", 1025], ["TCP", 1080], ["TCP", 1433], ["TCP", 1521], ["TCP", 1723], ["TCP", 1883], ["TCP", 2000], ["TCP", 2049], ["TCP", 2082], ["TCP", 2083], ["TCP", 2222], ["TCP", 2375], ["TCP", 2376], ["TCP", 3000], ["TCP", 3128], ["TCP", 3306], ["TCP", 3389], ["TCP", 4443], ["TCP", 4567], ["TCP", 5000], ["TCP", 5060], ["TCP", 5432], ["TCP", 5555], ["TCP", 5601], ["TCP", 5900], ["TCP", 5984], ["TCP", 6000], ["TCP", 6379], ["TCP", 6443], ["TCP", 7001], ["TCP", 7547], ["TCP", 8000], ["TCP", 8008], ["TCP", 8080], ["TCP", 8081], ["TCP", 8088], ["TCP", 8443], ["TCP", 8888], ["TCP", 9000], ["TCP", 9042], ["TCP", 9090], ["TCP", 9100], ["TCP", 9200], ["UDP", 53], ["UDP", 67], ["UDP", 69], ["UDP", 111], ["UDP", 123], ["UDP", 137]]','{"TCP": 66, "UDP": 6}','[]','candidate',NULL,NULL);
INSERT INTO "scans" VALUES(5,'portscan','2001:db8:5ca3:10::1','2001:db8:5ca3:10::/64','2001:db8:e625:1::10',1796124600.0,1796124600.6,53,50,'[["TCP", 21], ["TCP", 22], ["TCP", 23], ["TCP", 25], ["TCP", 53], ["TCP", 80], ["TCP", 81], ["TCP", 110], ["TCP", 111], ["TCP", 135], ["TCP", 139], ["TCP", 143], ["TCP", 179], ["TCP", 389], ["TCP", 443], ["TCP", 445], ["TCP", 465], ["TCP", 502], ["TCP", 587], ["TCP", 631], ["TCP", 873], ["TCP", 993], ["TCP", 995], ["TCP", 1025], ["TCP", 1080], ["TCP", 1433], ["TCP", 1521], ["TCP", 1723], ["TCP", 1883], ["TCP", 2000], ["TCP", 2049], ["TCP", 2082], ["TCP", 2083], ["TCP", 2222], ["TCP", 2375], ["TCP", 2376], ["TCP", 3000], ["TCP", 3128], ["TCP", 3306], ["TCP", 3389], ["TCP", 4443], ["TCP", 4567], ["TCP", 5000], ["TCP", 5060], ["TCP", 5432], ["TCP", 5555], ["TCP", 5601], ["TCP", 5900], ["TCP", 5984], ["TCP", 6000]]','{"TCP": 50}','[]','unattributed',NULL,NULL);
INSERT INTO "scans" VALUES(6,'sweep','2001:db8:5ca4:10::5','2001:db8:5ca4:10::/64','*',1796125200.0,1796125204.0,9,1,'[["TCP", 22]]','{"TCP": 1}','["2001:db8:e625:1::20", "2001:db8:e625:1::21", "2001:db8:e625:1::22", "2001:db8:e625:1::23", "2001:db8:e625:1::24", "2001:db8:e625:1::25", "2001:db8:e625:1::26", "2001:db8:e625:1::27", "2001:db8:e625:1::28"]','unattributed',NULL,NULL);
CREATE TABLE status (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL
    ) WITHOUT ROWID;
INSERT INTO "status" VALUES('capture','{"lost": 3, "overruns": 0, "malformed": 1}',1796126400.0);
INSERT INTO "status" VALUES('clean_stop','false',1796126400.0);
INSERT INTO "status" VALUES('clock','{"synchronised": true, "source": "chrony", "held": 0, "detail": "synchronised to 2001:db8:e625:1::1 (chronyd, stratum 2)"}',1796126400.0);
INSERT INTO "status" VALUES('counters','{"packets": 18211, "inbound": 15022, "outbound": 3189, "scans": 6}',1796126400.0);
INSERT INTO "status" VALUES('firewall','{"in_force": true, "problems": [], "backend": "iptables-legacy", "lan_prefixes": ["2001:db8:e625:1::/64"], "flood_dropped": {"flood": 100, "flood-table": 20}}',1796126400.0);
INSERT INTO "status" VALUES('heartbeat','1796126400.0',1796126400.0);
INSERT INTO "status" VALUES('inbound_24h','{"TCP": 120, "UDP": 16}',1796126400.0);
INSERT INTO "status" VALUES('interface','"eth0"',1796126400.0);
INSERT INTO "status" VALUES('last_record','1796126396.8',1796126400.0);
INSERT INTO "status" VALUES('open_episodes','2',1796126400.0);
INSERT INTO "status" VALUES('pid','4242',1796126400.0);
INSERT INTO "status" VALUES('privacy','{"in_force": true, "values": {"use_tempaddr": 2, "temp_prefered_lft": 1200, "temp_valid_lft": 2400}, "problems": [], "restored": []}',1796126400.0);
INSERT INTO "status" VALUES('prober','{"state": "probing", "prefix": "2001:db8:e625:1::/64", "live_addresses": 4, "max_live": 500, "servers": 6, "pool_errors": {}, "last_probe": 1796119200.0, "next": [{"at": 1796126460.0, "server": "2001:db8:a2::123"}, {"at": 1796126520.0, "server": "2001:db8:a3::123"}, {"at": 1796126580.0, "server": "2001:db8:a4::123"}], "reachability": {"router": "open", "state": "declared open", "granted": 0, "refused": 0, "lost": 0, "detail": "the configuration says the router lets all inbound IPv6 through", "advice": []}}',1796126400.0);
INSERT INTO "status" VALUES('rdns','{"2001:db8:5ca0:10::89da:a001": "scan-1.research.example"}',1796126400.0);
INSERT INTO "status" VALUES('started','1796104800.0',1796126400.0);
INSERT INTO "status" VALUES('store','{"keep_days": 90, "max_bytes": 512000000, "used_bytes": 1, "file_bytes": 1, "oldest": 1796119200.0, "free_bytes": 3000000000, "disk_full_since": null, "pruned": {"at": 1796126340.0, "deleted": {"scans": 12, "contacts": 40}}}',1796126400.0);
INSERT INTO "status" VALUES('synced_heartbeat','1796126400.0',1796126400.0);
CREATE TABLE suspects (
        proto TEXT NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL,
        scans INTEGER NOT NULL,         -- scans this endpoint preceded
        certain INTEGER NOT NULL,       -- of which the scanned address contacted nothing else
        score REAL NOT NULL,            -- sum over those scans of 1 / candidate endpoints
        exposures INTEGER NOT NULL,     -- addresses that contacted it (scanned or not)
        min_lag REAL NOT NULL, median_lag REAL NOT NULL,
        first_ts REAL NOT NULL, last_ts REAL NOT NULL,
        PRIMARY KEY (proto, dst, dport)
    ) WITHOUT ROWID;
INSERT INTO "suspects" VALUES('TCP','2001:db8:77:1::443',443,1,0,3.33333333333333314829e-01,1,40.0,40.0,1796121000.0,1796121000.0);
INSERT INTO "suspects" VALUES('UDP','2001:db8:a3::123',123,2,0,8.33333333333333259318e-01,3,1.1900000095367431641e+01,2.13500000238418579105e+01,1796121000.0,1796124000.0);
INSERT INTO "suspects" VALUES('UDP','2001:db8:e625:1::1',53,2,0,8.33333333333333259318e-01,5,1.24000000953674316406e+01,2.18000000715255737304e+01,1796121000.0,1796124000.0);
INSERT INTO "suspects" VALUES('UDP','2001:db8:f00d::123',123,2,2,2.0,2,5.09699988365173339843e+00,5.40254849994182586659e+03,1796108405.1,1796119200.0);
CREATE TABLE touches (
        probe_id INTEGER NOT NULL REFERENCES probes(id),
        src TEXT NOT NULL,
        src_net TEXT NOT NULL,          -- the scanner family (detect.family_prefix)
        proto TEXT NOT NULL,
        dport INTEGER NOT NULL,         -- the ICMP type for ICMP/ICMPv6; -1 where there is none
        first_ts REAL NOT NULL, last_ts REAL NOT NULL,
        packets INTEGER NOT NULL,
        PRIMARY KEY (probe_id, src, proto, dport)
    ) WITHOUT ROWID;
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',21,1796108405.1,1796108405.1,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',22,1796108405.105,1796108405.105,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',23,1796108405.11,1796108405.11,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',25,1796108405.115,1796108405.115,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',53,1796108405.12,1796108405.12,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',80,1796108405.125,1796108405.125,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',81,1.79610840512999987597e+09,1.79610840512999987597e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',110,1796108405.135,1796108405.135,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',111,1.79610840513999986652e+09,1.79610840513999986652e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',135,1796108405.145,1796108405.145,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',139,1.79610840514999985694e+09,1.79610840514999985694e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',143,1796108405.155,1796108405.155,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',179,1.79610840515999984744e+09,1.79610840515999984744e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',389,1796108405.165,1796108405.165,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',443,1.79610840516999983786e+09,1.79610840516999983786e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',445,1796108405.175,1796108405.175,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',465,1.79610840517999982828e+09,1.79610840517999982828e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',502,1796108405.185,1796108405.185,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',587,1.79610840518999981879e+09,1.79610840518999981879e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',631,1796108405.195,1796108405.195,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',873,1.79610840519999980921e+09,1.79610840519999980921e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',993,1796108405.205,1796108405.205,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',995,1.79610840520999979976e+09,1.79610840520999979976e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',1025,1796108405.215,1796108405.215,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',1080,1.79610840521999979018e+09,1.79610840521999979018e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',1433,1796108405.225,1796108405.225,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',1521,1796108405.23,1796108405.23,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',1723,1796108405.235,1796108405.235,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',1883,1796108405.24,1796108405.24,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2000,1796108405.245,1796108405.245,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2049,1796108405.25,1796108405.25,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2082,1.79610840525499987603e+09,1.79610840525499987603e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2083,1796108405.26,1796108405.26,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2222,1.79610840526499986645e+09,1.79610840526499986645e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2375,1796108405.27,1796108405.27,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',2376,1.79610840527499985696e+09,1.79610840527499985696e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',3000,1796108405.28,1796108405.28,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',3128,1.79610840528499984738e+09,1.79610840528499984738e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',3306,1796108405.29,1796108405.29,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',3389,1.79610840529499983788e+09,1.79610840529499983788e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',4443,1796108405.3,1796108405.3,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',4567,1.7961084053049998283e+09,1.7961084053049998283e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5000,1796108405.31,1796108405.31,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5060,1.79610840531499981872e+09,1.79610840531499981872e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5432,1796108405.32,1796108405.32,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5555,1.79610840532499980927e+09,1.79610840532499980927e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5601,1796108405.33,1796108405.33,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5900,1.79610840533499979969e+09,1.79610840533499979969e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',5984,1796108405.34,1796108405.34,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',6000,1.79610840534499979024e+09,1.79610840534499979024e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',6379,1796108405.35,1796108405.35,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',6443,1796108405.355,1796108405.355,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',7001,1796108405.36,1796108405.36,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',7547,1796108405.365,1796108405.365,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8000,1796108405.37,1796108405.37,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8008,1796108405.375,1796108405.375,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8080,1.79610840537999987606e+09,1.79610840537999987606e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8081,1796108405.385,1796108405.385,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8088,1.79610840538999986647e+09,1.79610840538999986647e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8443,1796108405.395,1796108405.395,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',8888,1.79610840539999985689e+09,1.79610840539999985689e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',9000,1796108405.405,1796108405.405,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',9042,1.7961084054099998474e+09,1.7961084054099998474e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',9090,1796108405.415,1796108405.415,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',9100,1.79610840541999983782e+09,1.79610840541999983782e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','TCP',9200,1796108405.425,1796108405.425,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',53,1.79610840542999982837e+09,1.79610840542999982837e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',67,1796108405.435,1796108405.435,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',69,1.79610840543999981879e+09,1.79610840543999981879e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',111,1796108405.445,1796108405.445,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',123,1.79610840544999980934e+09,1.79610840544999980934e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',137,1796108405.455,1796108405.455,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',161,1.79610840545999979975e+09,1.79610840545999979975e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',177,1796108405.465,1796108405.465,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',389,1.79610840546999979017e+09,1.79610840546999979017e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',500,1796108405.475,1796108405.475,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',623,1796108405.48,1796108405.48,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',1194,1796108405.485,1796108405.485,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',1434,1796108405.49,1796108405.49,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',1604,1796108405.495,1796108405.495,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',1900,1796108405.5,1796108405.5,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',2049,1.79610840550499987599e+09,1.79610840550499987599e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',3478,1796108405.51,1796108405.51,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',3702,1.7961084055149998665e+09,1.7961084055149998665e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',4500,1796108405.52,1796108405.52,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',5060,1.79610840552499985691e+09,1.79610840552499985691e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',5093,1796108405.53,1796108405.53,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',5351,1.79610840553499984733e+09,1.79610840553499984733e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',5353,1796108405.54,1796108405.54,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',5683,1.79610840554499983788e+09,1.79610840554499983788e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',10001,1796108405.55,1796108405.55,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',11211,1.7961084055549998283e+09,1.7961084055549998283e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',17185,1796108405.56,1796108405.56,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',20000,1.79610840556499981885e+09,1.79610840556499981885e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',27015,1796108405.57,1796108405.57,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca0:10::89da:a001','2001:db8:5ca0:10::/64','UDP',32414,1.79610840557499980927e+09,1.79610840557499980927e+09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',21,1796119200.0,1796119200.0,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',22,1796119200.005,1796119200.005,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',23,1796119200.01,1796119200.01,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',25,1796119200.015,1796119200.015,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',53,1796119200.02,1796119200.02,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',80,1796119200.025,1796119200.025,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',81,1796119200.03,1796119200.03,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',110,1796119200.035,1796119200.035,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',111,1796119200.04,1796119200.04,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',135,1796119200.045,1796119200.045,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',139,1796119200.05,1796119200.05,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',143,1796119200.055,1796119200.055,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',179,1796119200.06,1796119200.06,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',389,1796119200.065,1796119200.065,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',443,1796119200.07,1796119200.07,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',445,1796119200.075,1796119200.075,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',465,1796119200.08,1796119200.08,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',502,1796119200.085,1796119200.085,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',587,1796119200.09,1796119200.09,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',631,1796119200.095,1796119200.095,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',873,1796119200.1,1796119200.1,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',993,1796119200.105,1796119200.105,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',995,1796119200.11,1796119200.11,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',1025,1796119200.115,1796119200.115,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',1080,1796119200.12,1796119200.12,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',1433,1796119200.125,1796119200.125,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',1521,1796119200.13,1796119200.13,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',1723,1796119200.135,1796119200.135,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',1883,1796119200.14,1796119200.14,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2000,1796119200.145,1796119200.145,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2049,1796119200.15,1796119200.15,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2082,1796119200.155,1796119200.155,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2083,1796119200.16,1796119200.16,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2222,1796119200.165,1796119200.165,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2375,1796119200.17,1796119200.17,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',2376,1796119200.175,1796119200.175,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',3000,1796119200.18,1796119200.18,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',3128,1796119200.185,1796119200.185,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',3306,1796119200.19,1796119200.19,1);
INSERT INTO "touches" VALUES(3,'2001:db8:5ca1:10::943f:b001','2001:db8:5ca1:10::/64','TCP',3389,1796119200.195,1796119200.195,1);
CREATE INDEX scans_by_target ON scans(target, start);
CREATE INDEX scans_by_start ON scans(start);
CREATE INDEX candidates_by_endpoint ON candidates(proto, dst, dport);
CREATE INDEX contacts_by_endpoint ON contacts(proto, dst, dport);
CREATE INDEX pool_members_by_address ON pool_members(address);
CREATE INDEX probes_by_server ON probes(server, planned);
CREATE INDEX scans_by_probe ON scans(probe_id) WHERE probe_id IS NOT NULL;
CREATE INDEX touches_by_src_net ON touches(src_net);
COMMIT;
PRAGMA user_version=5;
