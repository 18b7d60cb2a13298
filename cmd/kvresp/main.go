// Command kvresp is a Redis-protocol cache server for LLM KV-cache chunks.
//
//	kvresp [config-file] [--directive value ...]   serve (redis-server's conventions)
//	kvresp bench [flags]                            load generator (kvresp bench -h)
//	kvresp version                                  print the version
//
// main only parses settings and wires the packages together; everything
// else lives in resp, store, slab and the tiers.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kvresp/bench"
	"kvresp/rawblock"
	"kvresp/resp"
	"kvresp/slab"
	"kvresp/slab/dram"
	"kvresp/store"
	"kvresp/tiers"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-v":
			fmt.Fprintf(stdout, "kvresp %s (redis protocol %s)\n", version, "7.2")
			return 0
		case "bench":
			return bench.Main(args[1:], stdout, stderr)
		case "check":
			return check(args[1:], stdout, stderr)
		case "fdp":
			return fdpCommand(args[1:], stdout, stderr)
		case "help", "--help", "-h":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	cfg, err := Load(args)
	if err != nil {
		// One problem per line, each with the prefix, as redis-server does.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "kvresp: %s\n", line)
		}
		return 2
	}
	logger, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kvresp: %v\n", err)
		return 2
	}
	defer closeLog()
	if err := serve(cfg, logger); err != nil {
		logger.Error("kvresp stopped", "err", err)
		return 1
	}
	logger.Info("kvresp is now ready to exit, bye bye...")
	return 0
}

const usage = `usage:
  kvresp [config-file] [--directive value ...]   start the server
  kvresp bench [flags]                            run the load generator (-h for flags)
  kvresp check [-dax] PATH                        verify an NVMe (or DAX) tier's log offline
  kvresp fdp info [-json] DEVICE                  show an NVMe namespace's FDP state and statistics
  kvresp version                                  print the version
Directives follow redis-server's names (port, bind, maxmemory, requirepass, ...);
see README.md for all of them.
`

// logLevel is the level loglevel names; CONFIG SET loglevel changes it live.
var logLevel slog.LevelVar

// levelOf maps Redis's log levels to slog's.
func levelOf(name string) slog.Level {
	switch name {
	case "debug", "verbose":
		return slog.LevelDebug
	case "warning":
		return slog.LevelWarn
	case "nothing":
		return slog.LevelError + 100
	}
	return slog.LevelInfo // notice
}

// newLogger makes the slog logger loglevel and logfile ask for.
func newLogger(cfg *Config, stderr io.Writer) (*slog.Logger, func(), error) {
	logLevel.Set(levelOf(cfg.Loglevel))
	w, closer := stderr, func() {}
	if cfg.Logfile != "" {
		f, err := os.OpenFile(cfg.Logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open logfile: %w", err)
		}
		w, closer = f, func() { _ = f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: &logLevel})), closer, nil
}

// serve builds the server from cfg and runs it until SIGINT or SIGTERM.
func serve(cfg *Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("cannot create dir %s: %w", cfg.Dir, err)
	}
	arena, err := slab.New(slab.Options{Limit: cfg.Maxmemory, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		return err
	}
	defer arena.Close()
	dt, err := dram.New(dram.Options{Arena: arena, HZ: cfg.HZ})
	if err != nil {
		return err
	}
	defer dt.Close()
	tierList := []tiers.Tier{dt}
	// The DAX tier opens first so that it closes last: the NVMe tier may
	// still demote into it while it closes.
	var dx *daxTier
	if slices.Contains(cfg.TierOrder, "dax") {
		if dx, err = openDax(cfg, arena, log); err != nil {
			return err
		}
		defer dx.Close()
	}
	var rb *rawblock.Engine
	var rbDev *rawblock.FileDevice
	if slices.Contains(cfg.TierOrder, "rawblock") {
		dev, eng, err := openRawblock(cfg, arena, log)
		if err != nil {
			return err
		}
		defer dev.Close()
		defer eng.Close()
		rb, rbDev = eng, dev
		tierList = append(tierList, eng)
	}
	if dx != nil {
		tierList = append(tierList, dx)
	}
	// The FDP state of an NVMe namespace, for INFO fdp and the kvresp_fdp_* metrics.
	fp := startFDPPoller(rbDev, time.Duration(cfg.FDPStatsInterval)*time.Second, log)
	defer fp.Close()
	var extraMetrics []prometheus.Collector
	if rb != nil {
		extraMetrics = append(extraMetrics, newRawblockCollector(rb, rbDev))
	}
	if fp != nil {
		extraMetrics = append(extraMetrics, newFDPCollector(fp))
	}
	if dx != nil {
		extraMetrics = append(extraMetrics, dx.collector())
	}
	so := store.Options{
		Tiers:        tierList,
		Promote:      cfg.RawblockPromote,
		WriteThrough: rb != nil && cfg.RawblockWriteMode == "always",
		Logger:       log,
	}
	// The upstream closes after the store (defers run last-in first-out):
	// the store's close writes what is queued for it.
	var up *tiers.Proxy
	if cfg.Upstream != "" {
		if up, err = openUpstream(cfg, arena, log); err != nil {
			return err
		}
		defer up.Close()
		so.Upstream, so.UpstreamQueue = up, cfg.UpstreamQueue
		if so.UpstreamModes, err = store.ParseUpstreamModes(cfg.UpstreamMode); err != nil {
			return err
		}
	}
	st, err := store.New(so)
	if err != nil {
		return err
	}
	if up != nil {
		extraMetrics = append(extraMetrics, newUpstreamCollector(up, st))
	}
	// Runs before the tiers close (defers run last-in first-out): demotions
	// finish and what only DRAM holds is written down, so a restart is warm
	// (or, DRAM alone with write-back, up to the upstream).
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("writing DRAM down at shutdown", "err", err)
		}
	}()
	shutdownReq := make(chan string, 1)
	srv, err := resp.NewServer(resp.Options{
		Store:            st,
		Arena:            arena,
		Config:           cfg,
		Requirepass:      cfg.Requirepass,
		MaxClients:       cfg.Maxclients,
		IdleTimeout:      time.Duration(cfg.Timeout) * time.Second,
		ProtoMaxBulkLen:  cfg.ProtoMaxBulkLen,
		QueryBufferLimit: cfg.ClientQueryBufferLimit,
		// The hard limit of client-output-buffer-limit normal.
		OutputBufferLimit: cfg.ClientOutputBufferLimit,
		Version:           version,
		InfoSections: func() map[string]string {
			m := infoSections(st, rb, rbDev)
			if fp != nil {
				m["fdp"] = fp.info()
			}
			if dx != nil {
				m["dax"] = dx.info()
			}
			if up != nil {
				m["upstream"] = upstreamInfo(cfg, up, st.Stats().Upstream)
			}
			return m
		},
		// SHUTDOWN takes the same path as SIGTERM.
		Shutdown: func(reason string) {
			select {
			case shutdownReq <- reason:
			default:
			}
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	wireConfig(cfg, arena, dt, srv)

	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, len(lns)+1)
	for _, l := range lns {
		log.Info("listening", "addr", l.ln.Addr().String(), "tls", l.tls != nil)
		go func() {
			if l.tls != nil {
				errc <- srv.ServeTLS(l.ln, l.tls)
			} else {
				errc <- srv.Serve(l.ln)
			}
		}()
	}
	var ms *http.Server
	if cfg.MetricsAddr != "" {
		// A busy metrics port must not keep the cache down: say so and
		// serve without metrics.
		if ms, err = serveMetrics(cfg.MetricsAddr, srv, arena, st, extraMetrics, log, errc); err != nil {
			log.Warn("serving without metrics", "err", err)
		}
	}
	log.Info("Ready to accept connections", "version", version, "maxmemory", cfg.Maxmemory, "pid", os.Getpid())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var serveErr error
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case r := <-shutdownReq:
		log.Info("shutting down", "reason", r)
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	if ms != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = ms.Shutdown(ctx)
		cancel()
	}
	_ = srv.Close()
	if cfg.UnixSocket != "" {
		_ = os.Remove(cfg.UnixSocket)
	}
	return serveErr
}

// wireConfig makes CONFIG SET of the mutable settings take effect.
func wireConfig(cfg *Config, arena *slab.Arena, dt *dram.Tier, srv *resp.Server) {
	cfg.OnSet("maxmemory", func(c *Config) error { return arena.SetLimit(c.Maxmemory) })
	cfg.OnSet("requirepass", func(c *Config) error { srv.SetRequirepass(c.Requirepass); return nil })
	cfg.OnSet("maxclients", func(c *Config) error { srv.SetMaxClients(c.Maxclients); return nil })
	cfg.OnSet("timeout", func(c *Config) error {
		srv.SetIdleTimeout(time.Duration(c.Timeout) * time.Second)
		return nil
	})
	cfg.OnSet("proto-max-bulk-len", func(c *Config) error { srv.SetProtoMaxBulkLen(c.ProtoMaxBulkLen); return nil })
	cfg.OnSet("client-query-buffer-limit", func(c *Config) error {
		srv.SetQueryBufferLimit(c.ClientQueryBufferLimit)
		return nil
	})
	cfg.OnSet("client-output-buffer-limit", func(c *Config) error {
		srv.SetOutputBufferLimit(c.ClientOutputBufferLimit)
		return nil
	})
	cfg.OnSet("hz", func(c *Config) error { dt.SetHZ(c.HZ); return nil })
	cfg.OnSet("loglevel", func(c *Config) error { logLevel.Set(levelOf(c.Loglevel)); return nil })
}

type listener struct {
	ln  net.Listener
	tls *tls.Config
}

// listen opens every listener cfg asks for, as redis-server does: each bind
// address on port and tls-port ("-addr" may be missing), and unixsocket.
func listen(cfg *Config) ([]listener, error) {
	var out []listener
	closeAll := func() {
		for _, l := range out {
			_ = l.ln.Close()
		}
	}
	var tlsCfg *tls.Config
	if cfg.TLSPort != 0 {
		var err error
		if tlsCfg, err = loadTLS(cfg); err != nil {
			return nil, err
		}
	}
	ports := []struct {
		port int
		tls  *tls.Config
	}{{cfg.Port, nil}, {cfg.TLSPort, tlsCfg}}
	for _, p := range ports {
		if p.port == 0 {
			continue
		}
		for _, b := range cfg.Bind {
			optional := strings.HasPrefix(b, "-")
			host := strings.TrimPrefix(b, "-")
			network := "tcp"
			switch host {
			case "*":
				host, network = "0.0.0.0", "tcp4"
			case "::*":
				host, network = "::", "tcp6"
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(p.port)))
			if err != nil {
				if optional {
					continue
				}
				closeAll()
				return nil, fmt.Errorf("cannot listen on %s port %d: %w", host, p.port, err)
			}
			out = append(out, listener{ln, p.tls})
		}
	}
	if cfg.UnixSocket != "" {
		_ = os.Remove(cfg.UnixSocket)
		ln, err := net.Listen("unix", cfg.UnixSocket)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("cannot listen on unixsocket %s: %w", cfg.UnixSocket, err)
		}
		if cfg.UnixSocketPerm != 0 {
			_ = os.Chmod(cfg.UnixSocket, os.FileMode(cfg.UnixSocketPerm))
		}
		out = append(out, listener{ln, nil})
	}
	if len(out) == 0 {
		return nil, errors.New("nothing to listen on: set port, tls-port or unixsocket")
	}
	return out, nil
}

// loadTLS builds the TLS listener's configuration from the tls-* settings.
func loadTLS(cfg *Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load tls-cert-file/tls-key-file: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.TLSCACertFile != "" {
		pem, err := os.ReadFile(cfg.TLSCACertFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read tls-ca-cert-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls-ca-cert-file %s holds no PEM certificate", cfg.TLSCACertFile)
		}
		tc.ClientCAs = pool
	}
	switch cfg.TLSAuthClients {
	case "yes":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	case "optional":
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// serveMetrics starts the Prometheus endpoint.
// extra are the collectors of the tiers below DRAM.
func serveMetrics(addr string, srv *resp.Server, arena *slab.Arena, st *store.Store, extra []prometheus.Collector, log *slog.Logger, errc chan<- error) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		srv.Metrics(),
		newStoreCollector(arena, st),
	)
	reg.MustRegister(extra...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles for whoever can reach the metrics address (loopback by
	// default): kvresp's performance work starts from them.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on metrics-addr %s: %w", addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return hs, nil
}
