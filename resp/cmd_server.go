package resp

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func init() {
	register(
		&command{name: "info", arity: -1, flags: flagLoading | flagStale, group: "server", since: "1.0.0", summary: "Returns information and statistics about the server.", fn: cmdInfo},
		&command{name: "config", arity: -2, flags: flagAdmin, group: "server", since: "2.0.0", summary: "A container for server configuration commands.", fn: cmdConfig, subs: configSubs()},
		&command{name: "command", arity: -1, flags: flagLoading | flagStale, group: "server", since: "2.8.13", summary: "Returns detailed information about all commands.", fn: cmdCommand, subs: commandSubs()},
		&command{name: "shutdown", arity: -1, flags: flagAdmin | flagNoScript | flagLoading | flagStale, group: "server", since: "1.0.0", summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.", fn: cmdShutdown},
		&command{name: "time", arity: 1, flags: flagFast | flagLoading | flagStale, group: "server", since: "2.6.0", summary: "Returns the server time.", fn: cmdTime},
	)
}

func cmdTime(c *conn, req *request) {
	now := time.Now()
	c.wr.array(2)
	c.wr.bulkString(strconv.FormatInt(now.Unix(), 10))
	c.wr.bulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

// cmdShutdown is SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: the graceful shutdown SIGTERM starts
// (what only DRAM holds is written down to the tiers below, which is kvresp's SAVE; NOSAVE is
// accepted and changes nothing, since a value acknowledged to a lower tier must stay there).
// As in Redis, a SHUTDOWN that goes ahead gets no reply: the connection closes.
func cmdShutdown(c *conn, req *request) {
	var save, nosave bool
	for _, a := range req.args[1:] {
		switch strings.ToLower(string(a)) {
		case "save":
			save = true
		case "nosave":
			nosave = true
		case "now", "force":
		case "abort":
			c.wr.error("ERR No shutdown in progress.")
			return
		default:
			c.wr.error(errSyntax)
			return
		}
	}
	switch {
	case save && nosave:
		c.wr.error(errSyntax)
		return
	case c.s.shutdown == nil:
		c.wr.error("ERR shutdown is not available in this server")
		return
	}
	c.s.shutdownOnce.Do(func() { c.s.shutdown(fmt.Sprintf("SHUTDOWN from client id=%d", c.id)) })
	c.closeAfter = true
}

// infoSections are INFO's sections in Redis's order; "tiers" is kvresp's.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "tiers", "keyspace"}

func cmdInfo(c *conn, req *request) {
	want := map[string]bool{}
	for _, a := range req.args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	var b strings.Builder
	extra := map[string]string{}
	if c.s.extra != nil {
		extra = c.s.extra()
	}
	for _, sec := range infoSections {
		if !all && !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", strings.ToUpper(sec[:1])+sec[1:])
		c.s.writeInfo(&b, sec)
		if e := extra[sec]; e != "" {
			b.WriteString(e)
		}
	}
	for sec, body := range extra {
		if (all || want[sec]) && !slices.Contains(infoSections, sec) {
			fmt.Fprintf(&b, "\r\n# %s\r\n%s", strings.ToUpper(sec[:1])+sec[1:], body)
		}
	}
	c.wr.verbatim(b.String())
}

// humanBytes formats like Redis's bytesToHuman.
func humanBytes(n int64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", f/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", f/(1<<20))
	case n < 1<<40:
		return fmt.Sprintf("%.2fG", f/(1<<30))
	default:
		return fmt.Sprintf("%.2fT", f/(1<<40))
	}
}

// rss reads the process's resident set size from /proc (0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func (s *Server) writeInfo(b *strings.Builder, sec string) {
	kv := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	switch sec {
	case "server":
		up := time.Since(s.started)
		kv("redis_version", helloVersion)
		kv("kvresp_version", s.version)
		kv("redis_mode", "standalone")
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", strconv.Itoa(32<<(^uint(0)>>63)))
		kv("go_version", runtime.Version())
		kv("process_id", os.Getpid())
		kv("run_id", s.runID)
		kv("uptime_in_seconds", int64(up/time.Second))
		kv("uptime_in_days", int64(up/(24*time.Hour)))
		if exe, err := os.Executable(); err == nil {
			kv("executable", exe)
		}
	case "clients":
		kv("connected_clients", s.NumClients())
		kv("maxclients", s.maxClients.Load())
		kv("blocked_clients", 0)
	case "memory":
		st := s.arena.Stats()
		r := rss()
		// used_memory is what is held (values, readers' and I/O buffers,
		// index and connection buffers); free buffers cached for reuse are
		// reported apart, so FLUSHALL shows at once.
		used := st.InUse + st.Reserved
		kv("used_memory", used)
		kv("used_memory_human", humanBytes(used))
		kv("used_memory_rss", r)
		kv("used_memory_rss_human", humanBytes(r))
		kv("maxmemory", st.Limit)
		kv("maxmemory_human", humanBytes(st.Limit))
		kv("maxmemory_policy", "allkeys-lru")
		kv("slab_in_use_bytes", st.InUse)
		kv("slab_cached_bytes", st.Cached)
		kv("slab_reserved_bytes", st.Reserved)
		if used > 0 {
			kv("mem_fragmentation_ratio", fmt.Sprintf("%.2f", float64(r)/float64(used)))
		}
	case "persistence":
		kv("loading", 0)
		kv("async_loading", 0)
		kv("rdb_changes_since_last_save", 0)
		kv("rdb_bgsave_in_progress", 0)
		kv("rdb_last_save_time", s.started.Unix())
		kv("aof_enabled", 0)
		kv("aof_rewrite_in_progress", 0)
	case "stats":
		st := s.store.Stats()
		var evicted, expired uint64
		for _, t := range st.Tiers {
			evicted += t.Evictions
			expired += t.Expired
		}
		kv("total_connections_received", s.stats.connsTotal.Load())
		kv("total_commands_processed", s.stats.commands.Load())
		kv("total_net_input_bytes", s.stats.netIn.Load())
		kv("total_net_output_bytes", s.stats.netOut.Load())
		kv("rejected_connections", s.stats.rejected.Load())
		kv("expired_keys", expired)
		kv("evicted_keys", evicted)
		kv("keyspace_hits", st.Hits)
		kv("keyspace_misses", st.Misses)
		kv("lmcache_metadata_evicted_with_chunk", st.CompanionDrops)
		kv("total_protocol_errors", s.stats.protoErrors.Load())
	case "replication":
		kv("role", "master")
		kv("connected_slaves", 0)
	case "cpu":
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			kv("used_cpu_sys", fmt.Sprintf("%d.%06d", ru.Stime.Sec, ru.Stime.Usec))
			kv("used_cpu_user", fmt.Sprintf("%d.%06d", ru.Utime.Sec, ru.Utime.Usec))
		}
	case "tiers":
		st := s.store.Stats()
		names := make([]string, 0, len(st.Tiers))
		for _, t := range st.Tiers {
			names = append(names, t.Name)
		}
		kv("tier_order", strings.Join(names, ","))
		for _, t := range st.Tiers {
			p := "tier_" + t.Name + "_"
			kv(p+"items", t.Items)
			kv(p+"bytes", t.Bytes)
			kv(p+"capacity_bytes", t.Capacity)
			kv(p+"hits", t.Hits)
			kv(p+"misses", t.Misses)
			kv(p+"puts", t.Puts)
			kv(p+"deletes", t.Deletes)
			kv(p+"evictions", t.Evictions)
			kv(p+"expired", t.Expired)
			kv(p+"errors", t.Errors)
		}
	case "keyspace":
		if n := s.store.Len(); n > 0 {
			fmt.Fprintf(b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", n, s.store.Expires())
		}
	}
}

var configHandlers = map[string]func(c *conn, req *request){
	"get": func(c *conn, req *request) {
		if len(req.args) < 3 {
			c.wrongArgs("config|get")
			return
		}
		seen := map[string]bool{}
		var pairs [][2]string
		if c.s.config != nil {
			for _, p := range req.args[2:] {
				for _, kv := range c.s.config.Get(string(p)) {
					if !seen[kv[0]] {
						seen[kv[0]] = true
						pairs = append(pairs, kv)
					}
				}
			}
		}
		c.wr.mapHeader(len(pairs))
		for _, kv := range pairs {
			c.wr.bulkString(kv[0])
			c.wr.bulkString(kv[1])
		}
	},
	"set": func(c *conn, req *request) {
		if len(req.args) < 4 || len(req.args)%2 != 0 {
			c.wrongArgs("config|set")
			return
		}
		if c.s.config == nil {
			c.wr.error("ERR CONFIG SET is not available")
			return
		}
		for i := 2; i < len(req.args); i += 2 {
			if err := c.s.config.Set(string(req.args[i]), string(req.args[i+1])); err != nil {
				msg := err.Error()
				if !strings.HasPrefix(msg, "ERR ") {
					msg = "ERR CONFIG SET failed (possibly related to argument '" + sanitize(string(req.args[i]), 64) + "') - " + msg
				}
				c.wr.error(sanitize(msg, 512))
				return
			}
		}
		c.wr.ok()
	},
	"resetstat": func(c *conn, req *request) { c.wr.ok() },
	"rewrite": func(c *conn, req *request) {
		c.wr.error("ERR CONFIG REWRITE is not supported by kvresp: edit the config file")
	},
	"help": func(c *conn, req *request) {
		c.wr.bulkStrings([]string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>", "    Set the configuration <directive> to <value>.",
			"RESETSTAT", "    Reset statistics reported by the INFO command.",
		})
	},
}

func configSubs() []*command {
	subs := []*command{
		{name: "config|get", arity: -3, summary: "Returns the effective values of configuration parameters."},
		{name: "config|set", arity: -4, summary: "Sets configuration parameters in-flight."},
		{name: "config|resetstat", arity: 2, summary: "Resets the server's statistics."},
		{name: "config|rewrite", arity: 2, summary: "Persists the effective configuration to file."},
		{name: "config|help", arity: 2, summary: "Returns helpful text about the different subcommands."},
	}
	for _, s := range subs {
		s.group, s.since, s.flags = "server", "2.0.0", flagAdmin|flagNoScript
	}
	return subs
}

func cmdConfig(c *conn, req *request) { subcommand(c, req, "config", configHandlers) }

func commandSubs() []*command {
	subs := []*command{
		{name: "command|count", arity: 2, summary: "Returns a count of commands."},
		{name: "command|docs", arity: -2, summary: "Returns documentary information about one, multiple or all commands."},
		{name: "command|info", arity: -2, summary: "Returns information about one, multiple or all commands."},
		{name: "command|list", arity: -2, summary: "Returns a list of command names."},
		{name: "command|help", arity: 2, summary: "Returns helpful text about the different subcommands."},
	}
	for _, s := range subs {
		s.group, s.since, s.flags = "server", "7.0.0", flagLoading|flagStale
	}
	return subs
}

func cmdCommand(c *conn, req *request) {
	if len(req.args) == 1 {
		cs := sortedCommands()
		c.wr.array(len(cs))
		for _, cmd := range cs {
			c.writeCommandInfo(cmd)
		}
		return
	}
	subcommand(c, req, "command", commandHandlers)
}

var commandHandlers = map[string]func(c *conn, req *request){
	"count": func(c *conn, req *request) { c.wr.int(int64(len(table))) },
	"list": func(c *conn, req *request) {
		var names []string
		for _, cmd := range sortedCommands() {
			names = append(names, cmd.name)
		}
		c.wr.bulkStrings(names)
	},
	"info": func(c *conn, req *request) {
		names := req.args[2:]
		if len(names) == 0 {
			cs := sortedCommands()
			c.wr.array(len(cs))
			for _, cmd := range cs {
				c.writeCommandInfo(cmd)
			}
			return
		}
		c.wr.array(len(names))
		for _, n := range names {
			if cmd := lookup(strings.ToLower(string(n))); cmd != nil {
				c.writeCommandInfo(cmd)
			} else {
				c.wr.null()
			}
		}
	},
	"docs": func(c *conn, req *request) {
		var cs []*command
		if len(req.args) == 2 {
			cs = sortedCommands()
		} else {
			for _, n := range req.args[2:] {
				if cmd := lookup(strings.ToLower(string(n))); cmd != nil {
					cs = append(cs, cmd)
				}
			}
		}
		c.wr.mapHeader(len(cs))
		for _, cmd := range cs {
			c.wr.bulkString(cmd.name)
			c.writeCommandDocs(cmd)
		}
	},
	"help": func(c *conn, req *request) {
		c.wr.bulkStrings([]string{
			"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)", "    Return details about all commands.",
			"COUNT", "    Return the total number of commands in this server.",
			"LIST", "    Return a list of all commands in this server.",
			"INFO [<command-name> ...]", "    Return details about multiple commands.",
			"DOCS [<command-name> ...]", "    Return documentation details about multiple commands.",
		})
	},
}

// writeCommandInfo writes one COMMAND entry in Redis 7's ten-field form.
func (c *conn) writeCommandInfo(cmd *command) {
	c.wr.array(10)
	c.wr.bulkString(cmd.name)
	c.wr.int(int64(cmd.arity))
	var flags []string
	for _, f := range flagNames {
		if cmd.flags&f.f != 0 {
			flags = append(flags, f.name)
		}
	}
	c.wr.setHeader(len(flags))
	for _, f := range flags {
		c.wr.simple(f)
	}
	c.wr.int(int64(cmd.first))
	c.wr.int(int64(cmd.last))
	c.wr.int(int64(cmd.step))
	cats := []string{"@" + cmd.group}
	c.wr.setHeader(len(cats))
	for _, s := range cats {
		c.wr.simple(s)
	}
	c.wr.array(0) // tips
	if cmd.first > 0 {
		c.writeKeySpec(cmd)
	} else {
		c.wr.array(0)
	}
	c.wr.array(len(cmd.subs))
	for _, sub := range cmd.subs {
		c.writeCommandInfo(sub)
	}
}

// writeKeySpec writes the one key specification kvresp's commands need: a
// range of keys from a fixed index.
func (c *conn) writeKeySpec(cmd *command) {
	c.wr.array(1)
	c.wr.mapHeader(4)
	c.wr.bulkString("flags")
	c.wr.setHeader(0)
	c.wr.bulkString("begin_search")
	c.wr.mapHeader(2)
	c.wr.bulkString("type")
	c.wr.bulkString("index")
	c.wr.bulkString("spec")
	c.wr.mapHeader(1)
	c.wr.bulkString("index")
	c.wr.int(int64(cmd.first))
	c.wr.bulkString("find_keys")
	c.wr.mapHeader(2)
	c.wr.bulkString("type")
	c.wr.bulkString("range")
	c.wr.bulkString("spec")
	c.wr.mapHeader(3)
	c.wr.bulkString("lastkey")
	last := cmd.last
	if last > 0 {
		last -= cmd.first
	}
	c.wr.int(int64(last))
	c.wr.bulkString("keystep")
	c.wr.int(int64(cmd.step))
	c.wr.bulkString("limit")
	c.wr.int(0)
	c.wr.bulkString("notes")
	c.wr.bulkString("")
}

// writeCommandDocs writes COMMAND DOCS's map for one command.
func (c *conn) writeCommandDocs(cmd *command) {
	n := 3
	if len(cmd.subs) > 0 {
		n++
	}
	c.wr.mapHeader(n)
	c.wr.bulkString("summary")
	c.wr.bulkString(cmd.summary)
	c.wr.bulkString("since")
	c.wr.bulkString(cmd.since)
	c.wr.bulkString("group")
	c.wr.bulkString(cmd.group)
	if len(cmd.subs) > 0 {
		c.wr.bulkString("subcommands")
		c.wr.mapHeader(len(cmd.subs))
		for _, sub := range cmd.subs {
			c.wr.bulkString(sub.name)
			c.writeCommandDocs(sub)
		}
	}
}
