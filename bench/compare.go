package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"kvresp/internal/memsize"
)

// compareConfig is compare mode's part of the command line.
type compareConfig struct {
	kvrespBin  string
	redisBin   string
	maxmemory  int64
	rounds     int
	kvrespArgs string
	redisArgs  string
}

// server is a server process started for a comparison.
type server struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; startServer then fails visibly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs bin with its port, dir and maxmemory in redis-server's
// flag conventions, then waits until it answers PING.
func startServer(ctx context.Context, name, bin, dir string, args []string, cfg *config) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &server{name: name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	args = append([]string{"--port", strconv.Itoa(port), "--dir", dir}, args...)
	if cfg.password != "" {
		args = append(args, "--requirepass", cfg.password)
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, cfg); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s (%s) did not answer PING: %w%s", name, s.cmd, err, s.logTail())
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context, cfg *config) error {
	deadline := time.Now().Add(15 * time.Second)
	pcfg := *cfg
	pcfg.addr, pcfg.timeout = s.addr, time.Second
	for {
		err := ping(&pcfg)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-s.exited:
			return fmt.Errorf("it exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ping(cfg *config) error {
	c, err := openConn(cfg, false)
	if err != nil {
		return err
	}
	defer c.close()
	c.nc.SetDeadline(time.Now().Add(cfg.timeout))
	c.writeCommand("PING")
	if err := c.flush(); err != nil {
		return err
	}
	r, err := c.readReply(nil)
	if err != nil {
		return err
	}
	if r.kind != '+' || string(r.str) != "PONG" {
		return &unexpectedReply{want: "+PONG", got: r.describe()}
	}
	return nil
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n" + s.log + ":\n\t" + strings.Join(lines, "\n\t")
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// round is one run against one server, with the server's CPU use (a share
// of one core) and resident memory after it.
type round struct {
	Result *Result `json:"result"`
	CPU    float64 `json:"server_cpu"`
	RSSMB  float64 `json:"server_rss_mb"`
}

func measure(ctx context.Context, s *server, cfg *config, stderr io.Writer) (*round, error) {
	c := *cfg
	c.addr = s.addr
	cpu0 := procCPU(s.cmd.Process.Pid)
	start := time.Now()
	res, err := execute(ctx, &c, stderr)
	if err != nil {
		return nil, err
	}
	rd := &round{Result: res}
	if secs := time.Since(start).Seconds(); secs > 0 {
		rd.CPU = (procCPU(s.cmd.Process.Pid) - cpu0) / secs
	}
	rd.RSSMB = float64(procRSS(s.cmd.Process.Pid)) / 1e6
	return rd, nil
}

// Which way a metric is better.
const (
	neutral = 0
	higher  = 1
	lower   = -1
)

// metric is one line of the comparison.
type metric struct {
	Name   string  `json:"name"`
	Redis  float64 `json:"redis"`
	KVResp float64 `json:"kvresp"`
	Ratio  float64 `json:"ratio"`
	better int
}

// metricsOf flattens a round into named values, in a fixed order.
func metricsOf(rd *round) (names []string, vals []float64, better []int) {
	add := func(name string, v float64, b int) {
		names, vals, better = append(names, name), append(vals, v), append(better, b)
	}
	for _, row := range append([]Row{rd.Result.Total}, rd.Result.Commands...) {
		if row.Ops == 0 && row.Name != "total" {
			continue
		}
		add(row.Name+" ops/s", row.OpsPerSec, higher)
		if row.Ops > 0 && row.Bytes/row.Ops >= 1024 { // not for 28-byte metadata
			add(row.Name+" MB/s", row.MBPerSec, higher)
		}
		add(row.Name+" p50 ms", float64(row.P50Us)/1e3, lower)
		add(row.Name+" p99 ms", float64(row.P99Us)/1e3, lower)
		add(row.Name+" p99.9 ms", float64(row.P999Us)/1e3, lower)
		// Hit rates follow from what each run wrote and what each server
		// evicted: shown, not judged.
		if row.Hits+row.Misses > 0 {
			add(row.Name+" hit %", 100*float64(row.Hits)/float64(row.Hits+row.Misses), neutral)
		}
		add(row.Name+" errors", float64(row.Errors), lower)
	}
	if c := rd.Result.Chunks; c != nil && c.Requested > 0 {
		add("chunks retrieved %", 100*float64(c.Retrieved)/float64(c.Requested), neutral)
	}
	// CPU per MB moved, not CPU alone: a faster server may use more.
	if mb := rd.Result.Total.MBPerSec; mb > 0 {
		add("server CPU ms per GB", 1e6*rd.CPU/mb, lower)
	}
	add("server CPU (cores)", rd.CPU, neutral)
	add("server RSS MB", rd.RSSMB, lower)
	return names, vals, better
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// compareMetrics takes the median of each metric over each server's rounds.
func compareMetrics(redis, kvresp []*round) []metric {
	vals := map[string][2][]float64{}
	var order []string
	betterOf := map[string]int{}
	for side, rounds := range [][]*round{redis, kvresp} {
		for _, rd := range rounds {
			names, v, lo := metricsOf(rd)
			for i, n := range names {
				if _, ok := vals[n]; !ok {
					order = append(order, n)
				}
				e := vals[n]
				e[side] = append(e[side], v[i])
				vals[n] = e
				betterOf[n] = lo[i]
			}
		}
	}
	var out []metric
	for _, n := range order {
		m := metric{Name: n, Redis: median(vals[n][0]), KVResp: median(vals[n][1]), better: betterOf[n]}
		if m.Redis != 0 {
			m.Ratio = m.KVResp / m.Redis
		}
		out = append(out, m)
	}
	return out
}

// comparison is compare mode's JSON output.
type comparison struct {
	Workload string    `json:"workload"`
	Rounds   int       `json:"rounds"`
	Redis    []*round  `json:"redis"`
	KVResp   []*round  `json:"kvresp"`
	Metrics  []metric  `json:"metrics"`
	Started  time.Time `json:"started"`
}

// prepare checks the settings both server-starting modes share, finds the
// kvresp binary (this executable unless -kvresp-bin) and makes the directory
// the servers run in; the caller removes it.
func (cc *compareConfig) prepare() (string, error) {
	if cc.rounds < 1 {
		return "", errors.New("-rounds must be at least 1")
	}
	if cc.kvrespBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("cannot find this executable, give -kvresp-bin: %w", err)
		}
		cc.kvrespBin = exe
	}
	return os.MkdirTemp("", "kvresp-bench-")
}

func runCompare(ctx context.Context, cfg *config, cc *compareConfig, jsonOut bool, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kvresp bench compare: %v\n", err)
		return 1
	}
	tmp, err := cc.prepare()
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	mem := strconv.FormatInt(cc.maxmemory, 10)
	redisArgs := append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory", mem, "--maxmemory-policy", "allkeys-lru"}, strings.Fields(cc.redisArgs)...)
	// kvresp's Prometheus listener gets a free port too: its fixed default
	// may be taken by another kvresp on the machine.
	mport, err := freePort()
	if err != nil {
		return fail(err)
	}
	kvArgs := append([]string{"--maxmemory", mem, "--metrics-addr", "127.0.0.1:" + strconv.Itoa(mport)},
		strings.Fields(cc.kvrespArgs)...)

	redis, err := startServer(ctx, "redis-server", cc.redisBin, filepath.Join(tmp, "redis"), redisArgs, cfg)
	if err != nil {
		return fail(err)
	}
	defer redis.stop()
	kv, err := startServer(ctx, "kvresp", cc.kvrespBin, filepath.Join(tmp, "kvresp"), kvArgs, cfg)
	if err != nil {
		return fail(err)
	}
	defer kv.stop()
	fmt.Fprintf(stderr, "bench: redis-server on %s, kvresp on %s, %d rounds of %s each\n",
		redis.addr, kv.addr, cc.rounds, cfg.duration)

	out := comparison{Workload: cfg.workload, Rounds: cc.rounds, Started: time.Now()}
	errorsSeen := false
	for i := range cc.rounds {
		order := []*server{redis, kv}
		if i%2 == 1 {
			order = []*server{kv, redis}
		}
		for _, s := range order {
			fmt.Fprintf(stderr, "bench: round %d, %s\n", i+1, s.name)
			rd, err := measure(ctx, s, cfg, stderr)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", s.name, err))
			}
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			if rd.Result.Total.Errors > 0 {
				errorsSeen = true
				fmt.Fprintf(stderr, "bench: %s: %d errors: %s\n", s.name, rd.Result.Total.Errors,
					strings.Join(rd.Result.ErrorSamples, "; "))
			}
			if s == redis {
				out.Redis = append(out.Redis, rd)
			} else {
				out.KVResp = append(out.KVResp, rd)
			}
		}
	}
	out.Metrics = compareMetrics(out.Redis, out.KVResp)
	if jsonOut {
		writeJSON(stdout, &out)
	} else {
		writeComparison(stdout, cfg, cc, &out)
	}
	if errorsSeen {
		return 1
	}
	return 0
}

func writeComparison(w io.Writer, cfg *config, cc *compareConfig, c *comparison) {
	fmt.Fprintf(w, "%s: %d conns, values %s, maxmemory %s, %d rounds of %s per server, medians\n",
		cfg.workload, cfg.conns, memsize.Format(cfg.valueSize), memsize.Format(cc.maxmemory), cc.rounds, cfg.duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tredis-server\tkvresp\tkvresp/redis\t\t")
	for _, m := range c.Metrics {
		better := ""
		switch {
		case m.better == neutral || m.Redis == 0 || m.KVResp == m.Redis:
		case (m.KVResp > m.Redis) == (m.better == higher):
			better = "better"
		default:
			better = "worse"
		}
		ratio := "-"
		if m.Redis != 0 {
			ratio = fmt.Sprintf("%.3f", m.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.Name, fmtNum(m.Redis), fmtNum(m.KVResp), ratio, better)
	}
	tw.Flush()
}

func fmtNum(v float64) string {
	if v >= 100 || v <= -100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
