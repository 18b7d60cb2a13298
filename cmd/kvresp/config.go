package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"kvresp/fdp"
	"kvresp/internal/memsize"
	"kvresp/internal/sdsargs"
	"kvresp/store"
)

// Config holds every setting of kvresp. Its zero value is not meaningful: make
// one with Defaults or Load.
//
// Names, syntax and CONFIG GET formats follow redis-server, so that redis.conf
// habits carry over: the settings come from an optional config file of
// "directive value..." lines, then from "--directive value..." arguments,
// which win. Every directive is written once, in the directives table, which
// Load, Defaults, Get, Set and Validate all go through.
//
// Concurrency: until the Config is shared (Load → wiring), its fields may be
// read and written directly. Once connections run, Set may change the mutable
// fields at any moment: read them through Get, Snapshot, or inside an OnSet
// hook, never directly.
type Config struct {
	Port       int      // port: TCP port, 6379; 0 = no TCP listener
	Bind       []string // bind: up to 16 addresses, "127.0.0.1"; "*" = every IPv4 address, "::*" = every IPv6 address, "-addr" = skip addr if unavailable
	UnixSocket string   // unixsocket: path of a unix socket to listen on, "" = none (LMCache's unix:// URLs)
	// UnixSocketPerm is unixsocketperm, the socket file's mode in octal;
	// 0 leaves it to the umask.
	UnixSocketPerm uint32

	// Maxmemory is maxmemory: the DRAM tier's limit in bytes. Redis's
	// "0 = unlimited" would let 32 MiB values take the whole machine, so
	// for kvresp 0 (the default) means half of the machine's memory (MemTotal,
	// or the memory cgroup's limit when lower), as does "50%". "N%" is N% of
	// that memory, resolved when the value is parsed.
	Maxmemory int64
	// MaxmemoryPolicy is maxmemory-policy. Only allkeys-lru exists: kvresp
	// evicts or demotes under pressure and never answers a SET with -OOM,
	// which would desynchronise LMCache's resp:// client (DESIGN.md §2).
	MaxmemoryPolicy string
	Requirepass     string // requirepass: "" = no AUTH needed
	Dir             string // dir: where kvresp keeps its files, "./kvresp-data"
	Maxclients      int    // maxclients: 10000
	Timeout         int    // timeout: close a client idle this many seconds, 0 = never
	// ProtoMaxBulkLen is proto-max-bulk-len: the largest bulk string a
	// client may send, 512mb; at least 1mb (as in Redis) and at most
	// client-query-buffer-limit (so that a maximum-size SET fits).
	ProtoMaxBulkLen        int64
	ClientQueryBufferLimit int64 // client-query-buffer-limit: 1gb, at least 1mb
	// ClientOutputBufferLimit is the hard limit, in bytes, of
	// "client-output-buffer-limit normal <hard> <soft> <soft-seconds>": a
	// client whose pending replies exceed it is disconnected; 0 = no limit.
	// kvresp's default is 1gb (Redis's is 0) so that slow readers pipelining
	// GETs of big values cannot pin unbounded memory; a non-zero limit must be
	// at least proto-max-bulk-len so that one maximum-size GET fits. Soft
	// limits are not implemented and must be 0; the replica and pubsub classes
	// are accepted (redis.conf has them) and ignored.
	ClientOutputBufferLimit int64
	TLSPort                 int    // tls-port: 0 = no TLS listener
	TLSCertFile             string // tls-cert-file: PEM certificate, needed with tls-port
	TLSKeyFile              string // tls-key-file: PEM private key, needed with tls-port
	TLSCACertFile           string // tls-ca-cert-file: CAs that sign client certificates, needed unless tls-auth-clients is no
	// TLSAuthClients is tls-auth-clients: yes (require a client
	// certificate), optional (check one if sent) or no. kvresp's default is
	// no (Redis's is yes): LMCache's clients do not send certificates.
	TLSAuthClients string
	Databases      int    // databases: 16, for CONFIG GET; SELECT accepts only 0
	Loglevel       string // loglevel: debug, verbose, notice (default), warning or nothing
	Logfile        string // logfile: "" = stderr
	Save           string // save: only "" (no RDB snapshots), accepted for redis-benchmark and redis.conf habits
	Appendonly     bool   // appendonly: only no (no AOF), as above
	HZ             int    // hz: background tasks (active expiry) per second, 1..500, 10
	// MetricsAddr is metrics-addr, kvresp's own: host:port of the Prometheus
	// /metrics listener, "" = none. The default port 9379 stays clear of
	// redis_exporter's 9121, which may watch the upstream Redis on the same host.
	MetricsAddr string
	Daemonize   bool // daemonize: only no; run kvresp under systemd or another supervisor

	// TierOrder is tier-order: the tiers a key cascades through, in order,
	// from "dram", "rawblock" and "dax" ("upstream" is a later part). Its
	// default, dram,rawblock, gains dax when dax-path is set.
	TierOrder []string
	// RawblockPath is rawblock-path: the NVMe tier's file or block device;
	// "" = the file kvresp.rawblock under dir (sparse).
	RawblockPath string
	// RawblockSize is rawblock-size: the size of a file created for the
	// tier; 0 = the existing file's or device's size.
	RawblockSize       int64
	RawblockRegionSize int64  // rawblock-region-size: the log's region size when it is formatted, 256mb
	RawblockRings      int    // rawblock-rings: io_uring rings, one I/O worker each, 2
	RawblockQueueDepth int    // rawblock-queue-depth: I/Os in flight per ring, 32
	RawblockWriteMode  string // rawblock-write-mode: evict (written when DRAM evicts it) or always (SET acknowledged once durable)
	RawblockPromote    bool   // rawblock-promote: copy values read from the tier into DRAM, yes
	// RawblockTrim is rawblock-trim: deallocate reclaimed regions: auto (a
	// block device yes, a regular file no), yes or no.
	RawblockTrim string
	// FDPPids is fdp-pids: the placement ID of each class on an NVMe namespace device with
	// FDP, "meta:P,hot:P,cold:P"; "" takes the first three of the namespace's RUH status.
	FDPPids string
	// FDPStatsInterval is fdp-stats-interval: seconds between reads of the FDP statistics,
	// RUH status and events for INFO and metrics; 0 turns them off.
	FDPStatsInterval int
	// RawblockFormat is rawblock-format: erase a path that holds something
	// other than a kvresp log (kvresp never does it silently), no.
	RawblockFormat bool

	// DaxPath is dax-path: the DAX tier's file (on a filesystem mounted -o
	// dax) or device-DAX (/dev/daxX.Y); "" = no DAX tier.
	DaxPath string
	// DaxSize is dax-size: the size of a file created for the tier; 0 =
	// the existing file's or device's size.
	DaxSize int64
	// DaxRegionSize is dax-region-size: the log's region size when it is
	// formatted; 0 = 256mb, or a sixteenth of a smaller device.
	DaxRegionSize int64
	// DaxFormat is dax-format: erase a dax-path that holds something other
	// than a kvresp log, no.
	DaxFormat bool

	// Upstream is upstream: the store shared by the fleet below the local
	// tiers, a redis://, rediss://, redis-sentinel://, redis-cluster:// or
	// s3:// URL; "" = none.
	Upstream string
	// UpstreamMode is upstream-mode: a comma list of read-through,
	// write-through, write-through-async, write-back, exists, del.
	UpstreamMode string
	// UpstreamTimeout is upstream-timeout: the bound of one upstream call,
	// retries included, 1s.
	UpstreamTimeout time.Duration
	// UpstreamQueue is upstream-queue: writes that may wait for the
	// upstream (write-through-async, write-back) before SETs and evictions
	// wait for room, 64.
	UpstreamQueue int
	// UpstreamPoolSize is upstream-pool-size: connections per Redis node
	// (and as many again for streamed read-throughs from a single node); 0
	// = go-redis's default (10 per CPU).
	UpstreamPoolSize int
	// The S3 upstream's endpoint, region and credentials; "" = the URL's
	// query, then the usual AWS_* variables.
	UpstreamS3Endpoint, UpstreamS3Region     string
	UpstreamS3AccessKey, UpstreamS3SecretKey string
	UpstreamS3PathStyle                      bool // upstream-s3-path-style: bucket in the path, not the host name, no

	rt *runtimeState // set once by Defaults, never reassigned
}

type runtimeState struct {
	mu    sync.RWMutex // guards the exported fields against Set once shared
	setMu sync.Mutex   // serialises Set and OnSet, so a failed hook can restore the old value
	hooks map[string][]func(*Config) error
}

// directive is one row of the table: a setting's name, default and syntax.
type directive struct {
	name    string
	def     string // the default, written as on a config-file line
	mutable bool   // CONFIG SET may change it
	minArgs int
	maxArgs int // -1: no upper bound
	// parse sets the field from args, or returns an error and leaves it as
	// it was. parse(format(c)) must reproduce c: Set and Validate rely on it.
	parse  func(c *Config, args []string) error
	format func(c *Config) string // CONFIG GET's value
}

// maxmemoryShare is the default DRAM-tier limit as a share of the machine's
// memory: half leaves room for the Go heap, the page cache of the NVMe tier
// and the rest of the machine.
const maxmemoryShare = "50%"

const mb = 1 << 20

// maxUnixPath is sun_path's size on Linux (108) less the terminating NUL.
const maxUnixPath = 107

// redisPolicies are Redis's eviction policies: named in the error for one
// kvresp does not implement, as opposed to a typo.
var redisPolicies = []string{"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
	"allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"}

var directives = []directive{
	intVar("port", "6379", false, 0, 65535, func(c *Config) *int { return &c.Port }),
	{name: "bind", def: "127.0.0.1", minArgs: 1, maxArgs: 16, parse: parseBind,
		format: func(c *Config) string { return strings.Join(c.Bind, " ") }},
	stringVar("unixsocket", `""`, false, checkUnixSocket, func(c *Config) *string { return &c.UnixSocket }),
	{name: "unixsocketperm", def: "0", minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			n, err := strconv.ParseUint(a[0], 8, 32)
			if err != nil || n > 0o777 {
				return errors.New("not a file mode in octal (0 to 777)")
			}
			c.UnixSocketPerm = uint32(n)
			return nil
		},
		format: func(c *Config) string { return strconv.FormatUint(uint64(c.UnixSocketPerm), 8) }},
	{name: "maxmemory", def: "0", mutable: true, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			n, err := parseMemory(a[0])
			if err != nil {
				return err
			}
			if n > 0 && n < mb {
				return errors.New("less than 1mb: a unit missing? (0 means the default)")
			}
			if n == 0 {
				// 0 stays 0 when the machine's memory is unknown:
				// Validate reports that.
				n, _ = parseMemory(maxmemoryShare)
			}
			c.Maxmemory = n
			return nil
		},
		format: func(c *Config) string { return strconv.FormatInt(c.Maxmemory, 10) }},
	{name: "maxmemory-policy", def: "allkeys-lru", mutable: true, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			v := strings.ToLower(a[0])
			switch {
			case v == "allkeys-lru":
				c.MaxmemoryPolicy = v
				return nil
			case slices.Contains(redisPolicies, v):
				return errors.New("kvresp implements only allkeys-lru: it evicts or demotes, and never refuses a SET for lack of memory")
			}
			return errors.New("argument must be one of the following: allkeys-lru")
		},
		format: func(c *Config) string { return c.MaxmemoryPolicy }},
	stringVar("requirepass", `""`, true, nil, func(c *Config) *string { return &c.Requirepass }),
	stringVar("dir", "./kvresp-data", false, func(s string) error {
		if s == "" {
			return errors.New("must not be empty")
		}
		return nil
	}, func(c *Config) *string { return &c.Dir }),
	intVar("maxclients", "10000", true, 1, math.MaxInt32, func(c *Config) *int { return &c.Maxclients }),
	intVar("timeout", "0", true, 0, math.MaxInt32, func(c *Config) *int { return &c.Timeout }),
	sizeVar("proto-max-bulk-len", "512mb", true, mb, func(c *Config) *int64 { return &c.ProtoMaxBulkLen }),
	sizeVar("client-query-buffer-limit", "1gb", true, mb, func(c *Config) *int64 { return &c.ClientQueryBufferLimit }),
	{name: "client-output-buffer-limit", def: "normal 1gb 0 0", mutable: true, minArgs: 4, maxArgs: -1,
		parse: parseOutputBufferLimit,
		format: func(c *Config) string {
			return "normal " + strconv.FormatInt(c.ClientOutputBufferLimit, 10) + " 0 0"
		}},
	intVar("tls-port", "0", false, 0, 65535, func(c *Config) *int { return &c.TLSPort }),
	stringVar("tls-cert-file", `""`, false, nil, func(c *Config) *string { return &c.TLSCertFile }),
	stringVar("tls-key-file", `""`, false, nil, func(c *Config) *string { return &c.TLSKeyFile }),
	stringVar("tls-ca-cert-file", `""`, false, nil, func(c *Config) *string { return &c.TLSCACertFile }),
	enumVar("tls-auth-clients", "no", false, func(c *Config) *string { return &c.TLSAuthClients }, "yes", "no", "optional"),
	intVar("databases", "16", false, 1, math.MaxInt32, func(c *Config) *int { return &c.Databases }),
	enumVar("loglevel", "notice", true, func(c *Config) *string { return &c.Loglevel }, "debug", "verbose", "notice", "warning", "nothing"),
	stringVar("logfile", `""`, false, nil, func(c *Config) *string { return &c.Logfile }),
	{name: "save", def: `""`, mutable: true, minArgs: 1, maxArgs: -1,
		parse: func(c *Config, a []string) error {
			if len(a) != 1 || a[0] != "" {
				return errors.New(`kvresp writes no RDB snapshots: only save "" is accepted`)
			}
			c.Save = ""
			return nil
		},
		format: func(c *Config) string { return c.Save }},
	boolVar("appendonly", "no", true, "kvresp has no append-only file: only appendonly no is accepted",
		func(c *Config) *bool { return &c.Appendonly }),
	intVar("hz", "10", true, 1, 500, func(c *Config) *int { return &c.HZ }),
	stringVar("metrics-addr", "127.0.0.1:9379", false, checkHostPort, func(c *Config) *string { return &c.MetricsAddr }),
	{name: "tier-order", def: "dram,rawblock", minArgs: 1, maxArgs: 1,
		parse:  parseTierOrder,
		format: func(c *Config) string { return strings.Join(c.TierOrder, ",") }},
	stringVar("rawblock-path", `""`, false, nil, func(c *Config) *string { return &c.RawblockPath }),
	sizeVar("rawblock-size", "8gb", false, 0, func(c *Config) *int64 { return &c.RawblockSize }),
	sizeVar("rawblock-region-size", "256mb", false, 1*mb, func(c *Config) *int64 { return &c.RawblockRegionSize }),
	intVar("rawblock-rings", "2", false, 1, 64, func(c *Config) *int { return &c.RawblockRings }),
	intVar("rawblock-queue-depth", "32", false, 1, 4096, func(c *Config) *int { return &c.RawblockQueueDepth }),
	enumVar("rawblock-write-mode", "evict", false, func(c *Config) *string { return &c.RawblockWriteMode }, "evict", "always"),
	boolVar("rawblock-promote", "yes", false, "", func(c *Config) *bool { return &c.RawblockPromote }),
	enumVar("rawblock-trim", "auto", false, func(c *Config) *string { return &c.RawblockTrim }, "auto", "yes", "no"),
	boolVar("rawblock-format", "no", false, "", func(c *Config) *bool { return &c.RawblockFormat }),
	stringVar("fdp-pids", `""`, false, checkFDPPids, func(c *Config) *string { return &c.FDPPids }),
	intVar("fdp-stats-interval", "10", false, 0, 86400, func(c *Config) *int { return &c.FDPStatsInterval }),
	stringVar("dax-path", `""`, false, nil, func(c *Config) *string { return &c.DaxPath }),
	sizeVar("dax-size", "0", false, 0, func(c *Config) *int64 { return &c.DaxSize }),
	sizeVar("dax-region-size", "0", false, 0, func(c *Config) *int64 { return &c.DaxRegionSize }),
	boolVar("dax-format", "no", false, "", func(c *Config) *bool { return &c.DaxFormat }),
	stringVar("upstream", `""`, false, checkUpstreamURL, func(c *Config) *string { return &c.Upstream }),
	stringVar("upstream-mode", store.DefaultUpstreamModes, false, func(s string) error {
		_, err := store.ParseUpstreamModes(s)
		return err
	}, func(c *Config) *string { return &c.UpstreamMode }),
	durationVar("upstream-timeout", "1s", false, func(c *Config) *time.Duration { return &c.UpstreamTimeout }),
	intVar("upstream-queue", "64", false, 1, 1<<20, func(c *Config) *int { return &c.UpstreamQueue }),
	intVar("upstream-pool-size", "0", false, 0, 100000, func(c *Config) *int { return &c.UpstreamPoolSize }),
	stringVar("upstream-s3-endpoint", `""`, false, nil, func(c *Config) *string { return &c.UpstreamS3Endpoint }),
	stringVar("upstream-s3-region", `""`, false, nil, func(c *Config) *string { return &c.UpstreamS3Region }),
	stringVar("upstream-s3-access-key", `""`, false, nil, func(c *Config) *string { return &c.UpstreamS3AccessKey }),
	stringVar("upstream-s3-secret-key", `""`, false, nil, func(c *Config) *string { return &c.UpstreamS3SecretKey }),
	boolVar("upstream-s3-path-style", "no", false, "", func(c *Config) *bool { return &c.UpstreamS3PathStyle }),
	boolVar("daemonize", "no", false, "kvresp does not daemonize: run it in the foreground under systemd or another supervisor",
		func(c *Config) *bool { return &c.Daemonize }),
}

func intVar(name, def string, mutable bool, lo, hi int, field func(*Config) *int) directive {
	return directive{name: name, def: def, mutable: mutable, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			n, err := strconv.Atoi(a[0])
			if err != nil {
				return errors.New("not an integer")
			}
			if n < lo || n > hi {
				return fmt.Errorf("must be between %d and %d", lo, hi)
			}
			*field(c) = n
			return nil
		},
		format: func(c *Config) string { return strconv.Itoa(*field(c)) }}
}

func sizeVar(name, def string, mutable bool, lo int64, field func(*Config) *int64) directive {
	return directive{name: name, def: def, mutable: mutable, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			n, err := memsize.Parse(a[0])
			if err != nil {
				return err
			}
			if n < lo {
				return fmt.Errorf("must be at least %d (%s)", lo, memsize.Format(lo))
			}
			*field(c) = n
			return nil
		},
		format: func(c *Config) string { return strconv.FormatInt(*field(c), 10) }}
}

// boolVar is a yes/no directive; refuseYes, when set, is why yes is refused.
func boolVar(name, def string, mutable bool, refuseYes string, field func(*Config) *bool) directive {
	return directive{name: name, def: def, mutable: mutable, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			switch strings.ToLower(a[0]) {
			case "yes":
				if refuseYes != "" {
					return errors.New(refuseYes)
				}
				*field(c) = true
			case "no":
				*field(c) = false
			default:
				return errors.New("argument must be 'yes' or 'no'")
			}
			return nil
		},
		format: func(c *Config) string {
			if *field(c) {
				return "yes"
			}
			return "no"
		}}
}

func enumVar(name, def string, mutable bool, field func(*Config) *string, values ...string) directive {
	return directive{name: name, def: def, mutable: mutable, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			v := strings.ToLower(a[0])
			if !slices.Contains(values, v) {
				return errors.New("argument must be one of the following: " + strings.Join(values, ", "))
			}
			*field(c) = v
			return nil
		},
		format: func(c *Config) string { return *field(c) }}
}

// durationVar is a duration directive: "1s", "250ms", or a plain number of
// milliseconds.
func durationVar(name, def string, mutable bool, field func(*Config) *time.Duration) directive {
	return directive{name: name, def: def, mutable: mutable, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			d, err := time.ParseDuration(a[0])
			if n, nerr := strconv.ParseInt(a[0], 10, 64); nerr == nil {
				d, err = time.Duration(n)*time.Millisecond, nil
			}
			if err != nil {
				return errors.New(`not a duration: write "1s", "250ms" or a number of milliseconds`)
			}
			if d <= 0 {
				return errors.New("must be positive")
			}
			*field(c) = d
			return nil
		},
		format: func(c *Config) string { return strconv.FormatInt(field(c).Milliseconds(), 10) }}
}

// stringVar is a one-argument directive; check, when set, vets the value.
func stringVar(name, def string, mutable bool, check func(string) error, field func(*Config) *string) directive {
	return directive{name: name, def: def, mutable: mutable, minArgs: 1, maxArgs: 1,
		parse: func(c *Config, a []string) error {
			if check != nil {
				if err := check(a[0]); err != nil {
					return err
				}
			}
			*field(c) = a[0]
			return nil
		},
		format: func(c *Config) string { return *field(c) }}
}

// checkFDPPids checks the syntax of fdp-pids; the IDs are checked against the device when it
// is opened.
func checkFDPPids(s string) error {
	if s == "" {
		return nil
	}
	_, err := fdp.ParsePIDs(s, nil)
	return err
}

// tierNames are the tiers tier-order may name, in the only order they may
// come in.
var tierNames = []string{"dram", "rawblock", "dax", "upstream"}

// parseTierOrder reads "dram,rawblock": known tiers, each once, DRAM first,
// in cascade order.
func parseTierOrder(c *Config, a []string) error {
	names := strings.Split(strings.ToLower(a[0]), ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	last := -1
	for _, n := range names {
		i := slices.Index(tierNames, n)
		switch {
		case i < 0:
			return fmt.Errorf("unknown tier %q: want %s", n, strings.Join(tierNames, ", "))
		case i <= last:
			return fmt.Errorf("tiers must come in the order %s, each once", strings.Join(tierNames, ","))
		}
		last = i
	}
	if names[0] != "dram" {
		return errors.New("the first tier must be dram")
	}
	c.TierOrder = names
	return nil
}

func parseBind(c *Config, a []string) error {
	for _, addr := range a {
		ip := strings.TrimPrefix(addr, "-") // "-addr": optional, as in Redis 7
		if ip == "*" || ip == "::*" {
			continue
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("%s is not an IP address (nor *, ::*)", sdsargs.Quote(addr))
		}
	}
	c.Bind = slices.Clone(a)
	return nil
}

func checkUnixSocket(s string) error {
	if len(s) > maxUnixPath {
		return fmt.Errorf("path is %d bytes long, a unix socket's is at most %d", len(s), maxUnixPath)
	}
	return nil
}

func checkHostPort(s string) error {
	if s == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

// parseOutputBufferLimit takes Redis's groups of "<class> <hard> <soft>
// <soft-seconds>" and keeps class normal's hard limit.
func parseOutputBufferLimit(c *Config, a []string) error {
	if len(a)%4 != 0 {
		return errors.New("wrong number of arguments: want groups of <class> <hard limit> <soft limit> <soft seconds>")
	}
	limit, set := c.ClientOutputBufferLimit, false
	for g := range slices.Chunk(a, 4) {
		hard, err1 := memsize.Parse(g[1])
		soft, err2 := memsize.Parse(g[2])
		secs, err3 := strconv.Atoi(g[3])
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if err3 != nil || secs < 0 {
			return fmt.Errorf("soft seconds %s: not a non-negative integer", sdsargs.Quote(g[3]))
		}
		switch strings.ToLower(g[0]) {
		case "normal":
			if soft != 0 || secs != 0 {
				return errors.New("kvresp applies only the hard limit: the soft limit and seconds of class normal must be 0")
			}
			limit, set = hard, true
		case "replica", "slave", "pubsub":
			// kvresp has neither replicas nor pub/sub.
		default:
			return fmt.Errorf("unknown client class %s: want normal, replica or pubsub", sdsargs.Quote(g[0]))
		}
	}
	if set {
		c.ClientOutputBufferLimit = limit
	}
	return nil
}

func lookup(name string) *directive {
	name = strings.ToLower(name)
	for i := range directives {
		if directives[i].name == name {
			return &directives[i]
		}
	}
	return nil
}

// Defaults returns a Config with every directive at its default.
func Defaults() *Config {
	c := &Config{rt: &runtimeState{hooks: map[string][]func(*Config) error{}}}
	for _, d := range directives {
		args, err := sdsargs.Split(d.def)
		if err == nil {
			err = d.parse(c, args)
		}
		if err != nil {
			panic(fmt.Sprintf("BUG: default of %s %s: %v", d.name, d.def, err))
		}
	}
	return c
}

// Load reads redis-server's command line: an optional config file (a first
// argument not starting with "--"), then "--directive value..." arguments,
// which override the file. It returns every problem at once, one per line,
// each naming where it came from, and no Config if there is any.
func Load(args []string) (*Config, error) {
	l := &loader{c: Defaults()}
	if len(args) > 0 && !strings.HasPrefix(args[0], "--") {
		l.file(args[0], 0)
		args = args[1:]
	}
	l.args(args)
	if !l.orderSet && l.c.DaxPath != "" {
		l.c.TierOrder = append(slices.Clone(l.c.TierOrder), "dax")
	}
	if !l.orderSet && l.c.Upstream != "" {
		l.c.TierOrder = append(slices.Clone(l.c.TierOrder), "upstream")
	}
	l.errs = append(l.errs, l.c.validate()...)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return l.c, nil
}

type loader struct {
	c    *Config
	errs []error
	// orderSet says tier-order was given: dax-path and upstream then leave
	// it as it is.
	orderSet bool
}

// maxIncludeDepth stops include cycles; real configs nest one or two deep.
const maxIncludeDepth = 10

// file applies a config file: redis.conf's syntax, read by Redis's rules
// (loadServerConfigFromString): each line trimmed, blank lines and lines
// starting with # skipped, arguments split like sdssplitargs, directive
// names case-insensitive.
func (l *loader) file(name string, depth int) {
	data, err := os.ReadFile(name)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("cannot read config file: %w", err))
		return
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		n++
		where := fmt.Sprintf("config file %s line %d", name, n)
		line = strings.Trim(line, " \t\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		argv, err := sdsargs.Split(line)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if len(argv) == 0 {
			continue // only \v or \f: blank to sdssplitargs
		}
		if strings.EqualFold(argv[0], "include") {
			if len(argv) != 2 {
				l.errs = append(l.errs, fmt.Errorf("%s: include wants one path", where))
				continue
			}
			l.include(where, name, argv[1], depth)
			continue
		}
		l.apply(where, argv)
	}
}

// include applies the files that pattern names (a path or, as in Redis 7, a
// glob). Unlike Redis, a relative path is relative to the including file,
// not to the working directory.
func (l *loader) include(where, from, pattern string, depth int) {
	if depth >= maxIncludeDepth {
		l.errs = append(l.errs, fmt.Errorf("%s: include nested more than %d deep (a cycle?)", where, maxIncludeDepth))
		return
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	names := []string{pattern}
	if strings.ContainsAny(pattern, "*?[") {
		var err error
		if names, err = filepath.Glob(pattern); err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: include %s: %w", where, sdsargs.Quote(pattern), err))
			return
		}
	}
	for _, name := range names {
		l.file(name, depth+1)
	}
}

// args applies "--directive value..." arguments like redis-server: a
// directive takes the arguments up to the next one starting with "--", but
// always its first value even if that starts with "--"; "--port 6380" in one
// argument is split; a "--save" with no value means save "".
func (l *loader) args(args []string) {
	var cur []string
	flush := func() {
		if cur == nil {
			return
		}
		if strings.EqualFold(cur[0], "include") {
			if len(cur) != 2 {
				l.errs = append(l.errs, errors.New("--include: wants one path"))
			} else {
				l.include("--include", "", cur[1], 0)
			}
		} else {
			l.apply("", cur)
		}
		cur = nil
	}
	wantValue := false
	for i, a := range args {
		if !strings.HasPrefix(a, "--") || wantValue {
			if cur == nil {
				l.errs = append(l.errs, fmt.Errorf("argument %s: a value without a --directive before it (a config file must come first)", sdsargs.Quote(a)))
				continue
			}
			cur = append(cur, a)
			wantValue = false
			continue
		}
		flush()
		argv, err := sdsargs.Split(a[2:])
		if err != nil || len(argv) == 0 {
			l.errs = append(l.errs, fmt.Errorf("argument %s: not a --directive", sdsargs.Quote(a)))
			continue
		}
		cur, wantValue = argv, len(argv) == 1
		if wantValue && strings.EqualFold(argv[0], "save") && (i+1 == len(args) || strings.HasPrefix(args[i+1], "--")) {
			cur, wantValue = append(cur, ""), false
		}
	}
	flush()
}

// apply sets one directive; where names the config-file line it came from,
// or is "" for the command line.
func (l *loader) apply(where string, argv []string) {
	name := strings.ToLower(argv[0])
	prefix := where + ": " + name
	if where == "" {
		where, prefix = "--"+name, "--"+name
	}
	d := lookup(name)
	if d == nil {
		msg := fmt.Sprintf("%s: unknown directive '%s'", where, argv[0])
		if s := suggest(name); s != "" {
			msg += fmt.Sprintf(" (did you mean '%s'?)", s)
		}
		l.errs = append(l.errs, errors.New(msg))
		return
	}
	if err := d.set(l.c, argv[1:]); err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %w", prefix, err))
	}
	l.orderSet = l.orderSet || d.name == "tier-order"
}

// set checks the number of arguments and parses them, with the value in the
// error.
func (d *directive) set(c *Config, args []string) error {
	if len(args) < d.minArgs || (d.maxArgs >= 0 && len(args) > d.maxArgs) {
		want := strconv.Itoa(d.minArgs)
		switch {
		case d.maxArgs < 0:
			want = "at least " + want
		case d.maxArgs != d.minArgs:
			want += " to " + strconv.Itoa(d.maxArgs)
		}
		return fmt.Errorf("wrong number of arguments: want %s, got %d", want, len(args))
	}
	if err := d.parse(c, args); err != nil {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = sdsargs.Quote(a)
		}
		if len(q) == 1 {
			return fmt.Errorf("value %s: %w", q[0], err)
		}
		return fmt.Errorf("values %s: %w", strings.Join(q, " "), err)
	}
	return nil
}

// setArgs turns a CONFIG SET value, or a format result, into arguments: a
// one-argument directive takes it whole (a password may hold spaces), the
// others split it on spaces as Redis does.
func (d *directive) setArgs(value string) []string {
	if d.maxArgs == 1 {
		return []string{value}
	}
	if f := strings.Fields(value); len(f) > 0 {
		return f
	}
	return []string{""}
}

// suggest returns the directive closest to a misspelt name, or "".
func suggest(name string) string {
	best, bestDist := "", 3 // more than 2 edits away is no suggestion
	for _, d := range directives {
		if dist := editDistance(strings.ToLower(name), d.name); dist < bestDist {
			best, bestDist = d.name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Validate reports every problem of c at once: values a directive would
// refuse, and settings that contradict each other.
func (c *Config) Validate() error {
	c.rt.mu.RLock()
	defer c.rt.mu.RUnlock()
	return errors.Join(c.validate()...)
}

// validate is Validate without the lock.
func (c *Config) validate() []error {
	var errs []error
	for _, d := range directives {
		if d.name == "maxmemory" && c.Maxmemory == 0 {
			continue // reported below, with the reason
		}
		scratch := *c // parse only assigns fields, so a shallow copy is enough
		if err := d.set(&scratch, d.setArgs(d.format(c))); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
		}
	}
	if c.Maxmemory == 0 {
		_, err := physicalMemory()
		errs = append(errs, fmt.Errorf("maxmemory: no default (%v); set maxmemory to a size such as 8gb", err))
	}
	if c.Port == 0 && c.TLSPort == 0 && c.UnixSocket == "" {
		errs = append(errs, errors.New("port, tls-port and unixsocket are all off: kvresp would not listen anywhere"))
	}
	if c.Port != 0 && c.Port == c.TLSPort {
		errs = append(errs, fmt.Errorf("port and tls-port are both %d", c.Port))
	}
	if c.TLSPort != 0 {
		if c.TLSCertFile == "" {
			errs = append(errs, errors.New("tls-port is set but tls-cert-file is not"))
		}
		if c.TLSKeyFile == "" {
			errs = append(errs, errors.New("tls-port is set but tls-key-file is not"))
		}
		if c.TLSAuthClients != "no" && c.TLSCACertFile == "" {
			errs = append(errs, fmt.Errorf("tls-auth-clients %s needs tls-ca-cert-file to check client certificates; set it, or tls-auth-clients no", c.TLSAuthClients))
		}
	}
	if slices.Contains(c.TierOrder, "rawblock") && c.RawblockRegionSize%4096 != 0 {
		errs = append(errs, fmt.Errorf("rawblock-region-size (%d) must be a multiple of 4kb", c.RawblockRegionSize))
	}
	switch dax := slices.Contains(c.TierOrder, "dax"); {
	case dax && c.DaxPath == "":
		errs = append(errs, errors.New("tier-order names dax but dax-path is not set: set dax-path to the DAX tier's file or /dev/daxX.Y"))
	case !dax && c.DaxPath != "":
		errs = append(errs, fmt.Errorf("dax-path is set but tier-order (%s) leaves dax out: add dax to it, or unset dax-path", strings.Join(c.TierOrder, ",")))
	}
	switch up := slices.Contains(c.TierOrder, "upstream"); {
	case up && c.Upstream == "":
		errs = append(errs, errors.New("tier-order names upstream but upstream is not set: set upstream to a redis://, redis-sentinel://, redis-cluster:// or s3:// URL"))
	case !up && c.Upstream != "":
		errs = append(errs, fmt.Errorf("upstream is set but tier-order (%s) leaves it out: add upstream to it, or unset upstream", strings.Join(c.TierOrder, ",")))
	}
	if c.DaxSize%4096 != 0 {
		errs = append(errs, fmt.Errorf("dax-size (%d) must be a multiple of 4kb", c.DaxSize))
	}
	if c.DaxRegionSize != 0 && (c.DaxRegionSize%4096 != 0 || c.DaxRegionSize < mb) {
		errs = append(errs, fmt.Errorf("dax-region-size (%d) must be 0 (automatic) or a multiple of 4kb of at least 1mb", c.DaxRegionSize))
	}
	if c.ProtoMaxBulkLen > c.ClientQueryBufferLimit {
		errs = append(errs, fmt.Errorf("proto-max-bulk-len (%s) is larger than client-query-buffer-limit (%s): a maximum-size SET would not fit; raise client-query-buffer-limit",
			memsize.Format(c.ProtoMaxBulkLen), memsize.Format(c.ClientQueryBufferLimit)))
	}
	if c.ClientOutputBufferLimit != 0 && c.ClientOutputBufferLimit < c.ProtoMaxBulkLen {
		errs = append(errs, fmt.Errorf("client-output-buffer-limit normal (%s) is smaller than proto-max-bulk-len (%s): a GET of a maximum-size value would disconnect its client; raise it, or set it to 0 (no limit)",
			memsize.Format(c.ClientOutputBufferLimit), memsize.Format(c.ProtoMaxBulkLen)))
	}
	return errs
}

// Get answers CONFIG GET: the name/value pairs of the directives matching a
// glob pattern (case-insensitive; *, ?, [...] and \ as in Redis), sorted by
// name, formatted as Redis formats them: sizes as plain byte counts, booleans
// as yes/no, lists space-separated. A malformed pattern matches nothing.
func (c *Config) Get(pattern string) [][2]string {
	pattern = strings.ToLower(pattern)
	c.rt.mu.RLock()
	defer c.rt.mu.RUnlock()
	var out [][2]string
	for _, name := range c.Directives() {
		// path.Match treats "/" specially; no directive name has one.
		if ok, _ := path.Match(pattern, name); ok {
			out = append(out, [2]string{name, lookup(name).format(c)})
		}
	}
	return out
}

// Set answers CONFIG SET name value. The value is checked as a config-file
// value would be (a multi-argument directive's value is split on spaces),
// then against the other settings; on success the OnSet hooks of name run in
// the order they were added. If one fails, the old value is restored, the
// hooks that already ran are run again with it, and Set fails. Errors carry
// Redis's wording, "ERR" included, on one line, ready for an error reply.
func (c *Config) Set(name, value string) error {
	d := lookup(name)
	if d == nil {
		return errors.New(oneLine(fmt.Sprintf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", name)))
	}
	fail := func(err error) error {
		return errors.New(oneLine(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - %v", d.name, err)))
	}
	if !d.mutable {
		return fail(errors.New("can't set immutable config"))
	}
	c.rt.setMu.Lock()
	defer c.rt.setMu.Unlock()

	// Only Set writes, and Sets are serialised: c can be read without mu.
	next := *c
	if err := d.set(&next, d.setArgs(value)); err != nil {
		return fail(err)
	}
	if errs := next.validate(); len(errs) > 0 {
		return fail(errors.Join(errs...))
	}
	old := d.format(c)
	c.store(d, d.format(&next))
	hooks := c.rt.hooks[d.name]
	for i, fn := range hooks {
		if err := fn(c); err != nil {
			c.store(d, old)
			for _, undo := range hooks[:i] {
				_ = undo(c) // best effort: the error to report is err
			}
			return fail(err)
		}
	}
	return nil
}

// oneLine makes msg fit a RESP error reply: no CR or LF, several problems
// separated by "; ".
func oneLine(msg string) string {
	return strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", " ").Replace(msg)
}

// store sets d's field from a value format produced, under the lock.
func (c *Config) store(d *directive, formatted string) {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	if err := d.parse(c, d.setArgs(formatted)); err != nil {
		panic(fmt.Sprintf("BUG: %s does not parse its own format %s: %v", d.name, sdsargs.Quote(formatted), err))
	}
}

// OnSet adds fn to the functions Set calls after changing directive name,
// with the new value in c. fn may read c's fields and call Get or Snapshot,
// never Set. If a later hook fails, Set restores the old value and calls fn
// again; fn should leave things as they were when it fails itself.
func (c *Config) OnSet(name string, fn func(c *Config) error) {
	d := lookup(name)
	if d == nil || !d.mutable {
		panic(fmt.Sprintf("BUG: OnSet(%q): not a directive CONFIG SET can change", name))
	}
	c.rt.setMu.Lock()
	defer c.rt.setMu.Unlock()
	c.rt.hooks[d.name] = append(c.rt.hooks[d.name], fn)
}

// Snapshot returns a copy of c, consistent even while Set runs, with no hooks.
func (c *Config) Snapshot() *Config {
	c.rt.mu.RLock()
	s := *c
	c.rt.mu.RUnlock()
	s.Bind = slices.Clone(s.Bind)
	s.rt = &runtimeState{hooks: map[string][]func(*Config) error{}}
	return &s
}

// Directives returns the name of every directive, sorted.
func (c *Config) Directives() []string {
	names := make([]string, len(directives))
	for i, d := range directives {
		names[i] = d.name
	}
	slices.Sort(names)
	return names
}
