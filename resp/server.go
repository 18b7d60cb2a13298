// Package resp is kvresp's Redis protocol front end: listeners (TCP, Unix
// socket, TLS), connections, RESP2 and RESP3, the command table and the
// limits redis-server applies to bad or hostile input. It talks to the
// keyspace only through store.Store and takes large values straight from the
// socket into slab buffers and back out of them.
package resp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"kvresp/slab"
	"kvresp/store"
)

// Redis's defaults for the limits a client meets.
const (
	DefaultMaxClients       = 10000
	DefaultProtoMaxBulkLen  = 512 << 20
	DefaultQueryBufferLimit = 1 << 30
	// DefaultBigBulk is the size from which a bulk goes straight to a slab
	// buffer instead of the connection's small-argument buffer.
	DefaultBigBulk = 16 << 10
	// DefaultWriteStall cuts off a client that has read nothing of its
	// replies for this long, releasing what its replies pinned.
	DefaultWriteStall = 60 * time.Second
)

// Config is what CONFIG GET and CONFIG SET work on; cmd/kvresp implements it.
type Config interface {
	Get(pattern string) [][2]string
	Set(name, value string) error
}

// Options configure a Server. Zero values mean Redis's defaults.
type Options struct {
	Store  *store.Store
	Arena  *slab.Arena
	Config Config // may be nil: CONFIG then knows no settings

	Requirepass      string
	MaxClients       int
	IdleTimeout      time.Duration // 0 = never close idle clients
	ProtoMaxBulkLen  int64
	QueryBufferLimit int64
	// OutputBufferLimit closes a client whose pending replies exceed it
	// (client-output-buffer-limit's hard limit for normal clients); 0 = none.
	OutputBufferLimit int64
	BigBulk           int
	WriteStall        time.Duration
	// Version is kvresp's version string for INFO.
	Version string
	// InfoSections are extra INFO sections (name -> body) from other parts,
	// such as configuration facts cmd/kvresp knows.
	InfoSections func() map[string]string
	// Shutdown is what SHUTDOWN calls: it must begin a graceful shutdown (the one SIGTERM
	// starts) and return at once. nil: SHUTDOWN answers an error.
	Shutdown func(reason string)
	Logger   *slog.Logger
}

// Validate reports every problem with the options.
func (o Options) Validate() error {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("resp: a store is required"))
	}
	if o.Arena == nil {
		errs = append(errs, errors.New("resp: an arena is required"))
	}
	if o.MaxClients < 0 {
		errs = append(errs, errors.New("resp: maxclients must be positive"))
	}
	if o.ProtoMaxBulkLen != 0 && o.ProtoMaxBulkLen < 1<<20 {
		errs = append(errs, errors.New("resp: proto-max-bulk-len must be at least 1mb"))
	}
	if o.QueryBufferLimit != 0 && o.QueryBufferLimit < 1<<20 {
		errs = append(errs, errors.New("resp: client-query-buffer-limit must be at least 1mb"))
	}
	return errors.Join(errs...)
}

// Server serves RESP on any number of listeners.
type Server struct {
	store   *store.Store
	arena   *slab.Arena
	config  Config
	log     *slog.Logger
	version string
	extra   func() map[string]string
	// shutdown is Options.Shutdown; shutdownOnce makes a second SHUTDOWN a no-op.
	shutdown     func(reason string)
	shutdownOnce sync.Once
	started      time.Time
	runID        string
	bigBulk      int
	// writeStall is how long a client may leave its replies unread.
	writeStall time.Duration

	// Settings CONFIG SET may change while clients are connected.
	requirepass atomic.Pointer[string]
	maxClients  atomic.Int64
	idleTimeout atomic.Int64 // nanoseconds
	maxBulk     atomic.Int64
	maxQuery    atomic.Int64
	outputLimit atomic.Int64

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[int64]*conn
	closed    bool
	wg        sync.WaitGroup

	nextID atomic.Int64
	stats  serverStats
	m      *metrics
}

type serverStats struct {
	connsTotal, rejected, commands, netIn, netOut atomic.Int64
	protoErrors                                   atomic.Int64
}

// NewServer makes a server; Serve starts it on a listener.
func NewServer(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.ProtoMaxBulkLen == 0 {
		o.ProtoMaxBulkLen = DefaultProtoMaxBulkLen
	}
	if o.QueryBufferLimit == 0 {
		o.QueryBufferLimit = DefaultQueryBufferLimit
	}
	if o.BigBulk == 0 {
		o.BigBulk = DefaultBigBulk
	}
	if o.WriteStall == 0 {
		o.WriteStall = DefaultWriteStall
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{
		store:      o.Store,
		arena:      o.Arena,
		config:     o.Config,
		log:        o.Logger,
		version:    o.Version,
		extra:      o.InfoSections,
		shutdown:   o.Shutdown,
		started:    time.Now(),
		runID:      newRunID(),
		bigBulk:    o.BigBulk,
		writeStall: o.WriteStall,
		conns:      make(map[int64]*conn),
	}
	s.m = newMetrics(&s.stats)
	s.SetRequirepass(o.Requirepass)
	s.maxClients.Store(int64(o.MaxClients))
	s.idleTimeout.Store(int64(o.IdleTimeout))
	s.maxBulk.Store(o.ProtoMaxBulkLen)
	s.maxQuery.Store(o.QueryBufferLimit)
	s.outputLimit.Store(o.OutputBufferLimit)
	return s, nil
}

func newRunID() string {
	var b [20]byte
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, _ = f.Read(b[:])
		_ = f.Close()
	}
	return fmt.Sprintf("%x", b)
}

// SetRequirepass changes the password; "" turns authentication off.
// Connections already authenticated stay so, as in Redis.
func (s *Server) SetRequirepass(p string) { s.requirepass.Store(&p) }

// SetMaxClients changes maxclients for new connections.
func (s *Server) SetMaxClients(n int) { s.maxClients.Store(int64(n)) }

// SetIdleTimeout changes the idle timeout (0 = none).
func (s *Server) SetIdleTimeout(d time.Duration) { s.idleTimeout.Store(int64(d)) }

// SetProtoMaxBulkLen changes the largest accepted bulk.
func (s *Server) SetProtoMaxBulkLen(n int64) { s.maxBulk.Store(n) }

// SetQueryBufferLimit changes the largest accepted command.
func (s *Server) SetQueryBufferLimit(n int64) { s.maxQuery.Store(n) }

// SetOutputBufferLimit changes client-output-buffer-limit (0 = none).
func (s *Server) SetOutputBufferLimit(n int64) { s.outputLimit.Store(n) }

// Metrics returns the server's Prometheus collectors.
func (s *Server) Metrics() *metrics { return s.m }

// ServeTLS serves on ln with TLS.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	return s.Serve(tls.NewListener(ln, cfg))
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				// Out of file descriptors or a transient error: back off
				// like net/http does rather than spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.accept(nc)
	}
}

func (s *Server) accept(nc net.Conn) {
	s.stats.connsTotal.Add(1)
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	if int64(len(s.conns)) >= s.maxClients.Load() {
		s.mu.Unlock()
		s.stats.rejected.Add(1)
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
		_ = nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c.id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	s.m.connections.Inc()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c.id)
		s.mu.Unlock()
		s.m.connections.Dec()
	}()
}

// Close stops the listeners, closes every connection once its current
// command is done, and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	for _, c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// clients returns the connected clients ordered by id.
func (s *Server) clients() []*conn {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	return cs
}

// NumClients is the number of connected clients.
func (s *Server) NumClients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
