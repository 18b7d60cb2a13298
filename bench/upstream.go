package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// upstreamRound is one round of `bench upstream`: the latency of each GET,
// in the order the keys were read.
type upstreamRound struct {
	Direct, Cold, Warm, Copy, Splice []time.Duration
}

// upstreamResult is what `bench upstream` prints.
type upstreamResult struct {
	ValueSize int64 `json:"value_size"`
	Keys      int   `json:"keys"`
	Rounds    int   `json:"rounds"`
	// Latencies in milliseconds over every round: median and 90th percentile.
	DirectP50, DirectP90 float64
	ColdP50, ColdP90     float64
	WarmP50, WarmP90     float64
	// The same GETs through a relay that only forwards bytes (relay.go):
	// copying them through user space, and splicing them.
	CopyP50, CopyP90     float64
	SpliceP50, SpliceP90 float64
	// ColdRatio is the cold median over the direct median (target ≤ 1.2);
	// WarmRatio the warm median over the direct one (target < 1); CopyRatio
	// and SpliceRatio the relays' medians over the direct one, the floor of
	// ColdRatio for a proxy that copies and for one that does not.
	ColdRatio, WarmRatio, CopyRatio, SpliceRatio float64
}

// runUpstream measures kvresp as a read-through cache in front of a
// redis-server: each round GETs every key straight from the redis-server
// (direct), then through a kvresp whose local cache was just emptied with
// FLUSHALL, which the upstream never sees (cold: each GET is read through),
// then through kvresp again (warm: each GET is a local hit), and through two
// relays that only forward bytes, the floor under the cold reads. One
// client, one GET at a time, every value checked.
func runUpstream(ctx context.Context, cfg *config, cc *compareConfig, jsonOut bool, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kvresp bench upstream: %v\n", err)
		return 1
	}
	tmp, err := cc.prepare()
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	size := int(cfg.valueSize)
	mem := strconv.FormatInt(max(cc.maxmemory, 2*int64(cfg.keys)*cfg.valueSize+256<<20), 10)
	up, err := startServer(ctx, "redis-server", cc.redisBin, filepath.Join(tmp, "redis"),
		append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--proto-max-bulk-len", "2gb"},
			strings.Fields(cc.redisArgs)...), cfg)
	if err != nil {
		return fail(err)
	}
	defer up.stop()
	mport, err := freePort()
	if err != nil {
		return fail(err)
	}
	kv, err := startServer(ctx, "kvresp", cc.kvrespBin, filepath.Join(tmp, "kvresp"),
		append([]string{"--maxmemory", mem, "--metrics-addr", "127.0.0.1:" + strconv.Itoa(mport),
			"--tier-order", "dram,upstream", "--upstream", "redis://" + up.addr, "--upstream-mode", "read-through"},
			strings.Fields(cc.kvrespArgs)...), cfg)
	if err != nil {
		return fail(err)
	}
	defer kv.stop()

	p := newPattern(size)
	at := func(addr string) *config {
		c := *cfg
		c.addr = addr
		return &c
	}
	// The values are written to the upstream only.
	if err := prefill(ctx, at(up.addr), p, stderr); err != nil {
		return fail(fmt.Errorf("the upstream: %w", err))
	}
	relays := make([]*relay, 2)
	for i := range relays {
		if relays[i], err = startRelay(up.addr, i == 1); err != nil {
			return fail(err)
		}
		defer relays[i].close()
	}
	var conns []*conn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for _, addr := range []string{up.addr, kv.addr, relays[0].addr(), relays[1].addr()} {
		cn, err := openConn(at(addr), false)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, cn)
	}
	uc, kc, rc, sc := conns[0], conns[1], conns[2], conns[3]
	keys := make([][]byte, cfg.keys)
	for i := range keys {
		keys[i] = appendKey(nil, cfg.keyPrefix, i)
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 0))
	buf := make([]byte, 0, size)
	getAll := func(c *conn, what string) ([]time.Duration, error) {
		lat := make([]time.Duration, 0, len(keys))
		for _, k := range keys {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			start := time.Now()
			c.writeArrayHeader(2)
			c.writeBulkString("GET")
			c.writeBulk(k)
			if err := c.flush(); err != nil {
				return nil, err
			}
			b, ok, err := c.readBulk(buf)
			lat = append(lat, time.Since(start))
			if err == nil && !ok {
				err = fmt.Errorf("%s GET %s: a miss", what, k)
			}
			if err == nil {
				err = p.verify(k, b, size, rng)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
		return lat, nil
	}
	fmt.Fprintf(stderr, "bench: upstream redis-server on %s, kvresp on %s, %d keys of %d bytes, %d rounds\n",
		up.addr, kv.addr, len(keys), size, cc.rounds)
	var all upstreamRound
	for i := range cc.rounds {
		kc.writeCommand("FLUSHALL")
		if err := kc.flush(); err != nil {
			return fail(err)
		}
		if err := kc.expectOK(); err != nil {
			return fail(fmt.Errorf("FLUSHALL on kvresp: %w", err))
		}
		var rd upstreamRound
		direct := func() error { var err error; rd.Direct, err = getAll(uc, "direct"); return err }
		through := func() error {
			var err error
			if rd.Cold, err = getAll(kc, "cold"); err != nil {
				return err
			}
			rd.Warm, err = getAll(kc, "warm")
			return err
		}
		copied := func() error { var err error; rd.Copy, err = getAll(rc, "copy relay"); return err }
		spliced := func() error { var err error; rd.Splice, err = getAll(sc, "splice relay"); return err }
		steps := []func() error{direct, through, copied, spliced}
		if i%2 == 1 {
			slices.Reverse(steps)
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return fail(err)
			}
		}
		all.Direct = append(all.Direct, rd.Direct...)
		all.Cold = append(all.Cold, rd.Cold...)
		all.Warm = append(all.Warm, rd.Warm...)
		all.Copy = append(all.Copy, rd.Copy...)
		all.Splice = append(all.Splice, rd.Splice...)
		fmt.Fprintf(stderr, "bench: round %d: direct %.2f ms, cold %.2f ms, warm %.2f ms, copy relay %.2f ms, splice relay %.2f ms (medians)\n", i+1,
			quantileMs(rd.Direct, 0.5), quantileMs(rd.Cold, 0.5), quantileMs(rd.Warm, 0.5), quantileMs(rd.Copy, 0.5), quantileMs(rd.Splice, 0.5))
	}
	res := upstreamResult{ValueSize: cfg.valueSize, Keys: len(keys), Rounds: cc.rounds,
		DirectP50: quantileMs(all.Direct, 0.5), DirectP90: quantileMs(all.Direct, 0.9),
		ColdP50: quantileMs(all.Cold, 0.5), ColdP90: quantileMs(all.Cold, 0.9),
		WarmP50: quantileMs(all.Warm, 0.5), WarmP90: quantileMs(all.Warm, 0.9),
		CopyP50: quantileMs(all.Copy, 0.5), CopyP90: quantileMs(all.Copy, 0.9),
		SpliceP50: quantileMs(all.Splice, 0.5), SpliceP90: quantileMs(all.Splice, 0.9)}
	res.ColdRatio, res.WarmRatio = res.ColdP50/res.DirectP50, res.WarmP50/res.DirectP50
	res.CopyRatio, res.SpliceRatio = res.CopyP50/res.DirectP50, res.SpliceP50/res.DirectP50
	if jsonOut {
		writeJSON(stdout, &res)
		return 0
	}
	fmt.Fprintf(stdout, "GET of %d-byte values, %d keys × %d rounds, one client:\n", size, len(keys), cc.rounds)
	fmt.Fprintf(stdout, "%-34s %10s %10s %8s\n", "", "p50 ms", "p90 ms", "vs direct")
	fmt.Fprintf(stdout, "%-34s %10.2f %10.2f %8s\n", "direct to the upstream redis-server", res.DirectP50, res.DirectP90, "1.00")
	fmt.Fprintf(stdout, "%-34s %10.2f %10.2f %8.2f\n", "kvresp, cold (read-through)", res.ColdP50, res.ColdP90, res.ColdRatio)
	fmt.Fprintf(stdout, "%-34s %10.2f %10.2f %8.2f\n", "kvresp, warm (local hit)", res.WarmP50, res.WarmP90, res.WarmRatio)
	fmt.Fprintf(stdout, "%-34s %10.2f %10.2f %8.2f\n", "relay copying bytes (cold's floor)", res.CopyP50, res.CopyP90, res.CopyRatio)
	fmt.Fprintf(stdout, "%-34s %10.2f %10.2f %8.2f\n", "relay splicing bytes", res.SpliceP50, res.SpliceP90, res.SpliceRatio)
	return 0
}

// quantileMs is the q-quantile of d in milliseconds (nearest rank).
func quantileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / float64(time.Millisecond)
}
