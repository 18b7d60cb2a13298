package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main runs `kvresp bench ARGS...` (args without "bench") and returns the
// exit code: 0 when the run saw no error, 1 when it did or could not run,
// 2 for a bad command line.
func Main(args []string, stdout, stderr io.Writer) int {
	compare, upstream := false, false
	if len(args) > 0 && args[0] == "compare" {
		compare, args = true, args[1:]
	} else if len(args) > 0 && args[0] == "upstream" {
		upstream, args = true, args[1:]
	}
	fs := flag.NewFlagSet("kvresp bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kvresp bench [compare|upstream] [flags]  (see `go doc kvresp/bench`)")
		fs.PrintDefaults()
	}
	cfg := config{}
	valueSize := sizeFlag(32 << 20)
	maxmemory := sizeFlag(2 << 30)
	var ratio string
	var jsonOut bool
	var cc compareConfig
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:6379", "server address (ignored by compare)")
	fs.StringVar(&cfg.workload, "workload", wlLMCacheRedis, "lmcache-redis, lmcache-resp or setget")
	fs.IntVar(&cfg.conns, "conns", 8, "connections, one worker each")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of the run (of each round in compare); 0 with -requests: until they are done")
	fs.Int64Var(&cfg.requests, "requests", 0, "stop after this many commands in all (0: no limit)")
	fs.Var(&valueSize, "value-size", "value (chunk) size: 28, 1048576, 4mb, 32mb (k/m/g = 1000s, kb/mb/gb = 1024s)")
	fs.IntVar(&cfg.keys, "keys", 1000, "setget: key range; lmcache-*: conversations remembered for prefix reuse")
	fs.StringVar(&ratio, "ratio", "1:1", "setget: SET:GET ratio")
	fs.IntVar(&cfg.pipeline, "pipeline", 1, "setget: commands in flight per connection")
	fs.StringVar(&cfg.password, "password", "", "AUTH with this password")
	fs.BoolVar(&jsonOut, "json", false, "print one JSON object instead of a table")
	fs.DurationVar(&cfg.progress, "progress", time.Second, "print a progress line to stderr this often (0: never)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "random seed (keys, conversations, sampled bytes)")
	fs.BoolVar(&cfg.prefill, "prefill", false, "setget: SET every key once before the run")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "give up on a reply (or a connect) after this long")
	fs.StringVar(&cfg.keyPrefix, "key-prefix", "kvbench:", "setget: key prefix")
	fs.StringVar(&cfg.model, "model", "meta-llama/Llama-3.1-8B-Instruct", "lmcache-*: model name in keys")
	fs.IntVar(&cfg.chunks, "chunks", 8, "lmcache-*: at most this many new chunks per conversation")
	fs.Float64Var(&cfg.reuse, "reuse", 0.75, "lmcache-*: chance that a conversation continues a prefix of an earlier one")
	fs.BoolVar(&compare, "compare", compare, "compare redis-server and kvresp (same as `bench compare`)")
	fs.StringVar(&cc.kvrespBin, "kvresp-bin", "", "compare: kvresp binary (default: this executable)")
	fs.StringVar(&cc.redisBin, "redis-bin", "redis-server", "compare: redis-server binary")
	fs.Var(&maxmemory, "maxmemory", "compare: --maxmemory of both servers")
	fs.IntVar(&cc.rounds, "rounds", 3, "compare: rounds per server (alternating; medians are reported)")
	fs.StringVar(&cc.kvrespArgs, "kvresp-args", "", "compare: extra kvresp arguments, space separated")
	fs.StringVar(&cc.redisArgs, "redis-args", "", "compare: extra redis-server arguments, space separated")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kvresp bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.valueSize = int64(valueSize)
	cc.maxmemory = int64(maxmemory)
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if cfg.requests > 0 && !durationSet {
		cfg.duration = 0
	}
	if err := cfg.parseRatio(ratio); err != nil {
		fmt.Fprintf(stderr, "kvresp bench: %v\n", err)
		return 2
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "kvresp bench: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if compare {
		return runCompare(ctx, &cfg, &cc, jsonOut, stdout, stderr)
	}
	if upstream {
		return runUpstream(ctx, &cfg, &cc, jsonOut, stdout, stderr)
	}
	res, err := execute(ctx, &cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kvresp bench: %v\n", err)
		return 1
	}
	if jsonOut {
		writeJSON(stdout, res)
	} else {
		res.writeText(stdout)
	}
	if res.Total.Errors > 0 {
		return 1
	}
	return 0
}

func (c *config) parseRatio(s string) error {
	a, b, ok := strings.Cut(s, ":")
	var err1, err2 error
	if ok {
		c.setRatio, err1 = strconv.Atoi(a)
		c.getRatio, err2 = strconv.Atoi(b)
	}
	if !ok || err1 != nil || err2 != nil || c.setRatio < 0 || c.getRatio < 0 || c.setRatio+c.getRatio == 0 {
		return fmt.Errorf("-ratio %q: want SET:GET, two counts, not both 0 (1:1, 1:10, 0:1)", s)
	}
	return nil
}

// validate reports every problem at once.
func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if rowsOf(c.workload) == nil {
		bad("-workload %q: want lmcache-redis, lmcache-resp or setget", c.workload)
	}
	if c.conns < 1 {
		bad("-conns must be at least 1")
	}
	if c.duration < 0 || c.requests < 0 || (c.duration == 0 && c.requests == 0) {
		bad("give a positive -duration, -requests, or both")
	}
	if c.valueSize < 1 || c.valueSize > maxBulkLen {
		bad("-value-size must be from 1 byte to 512mb (Redis's proto-max-bulk-len)")
	}
	if c.keys < 1 {
		bad("-keys must be at least 1")
	}
	if c.pipeline < 1 {
		bad("-pipeline must be at least 1")
	}
	if c.pipeline > 1 && c.workload != wlSetGet {
		bad("-pipeline applies to setget only: LMCache's clients keep one command in flight")
	}
	if c.timeout <= 0 {
		bad("-timeout must be positive")
	}
	if c.chunks < 1 {
		bad("-chunks must be at least 1")
	}
	if c.reuse < 0 || c.reuse > 1 {
		bad("-reuse must be from 0 to 1")
	}
	return errors.Join(errs...)
}
