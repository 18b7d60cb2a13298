package main_test

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestE2EGoRedis drives every supported command through go-redis v9, once over a RESP3
// handshake (HELLO 3) and once over RESP2, each against a fresh server.
func TestE2EGoRedis(t *testing.T) {
	for _, proto := range []int{3, 2} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			s := startServer(t, serverOptions{})
			rdb := redis.NewClient(&redis.Options{Addr: s.addr, Protocol: proto})
			t.Cleanup(func() { rdb.Close() })
			testGoRedisCommands(t, s, rdb, proto)
		})
	}
}

func testGoRedisCommands(t *testing.T, s *server, rdb *redis.Client, proto int) {
	ctx := ctxT(t)
	ok := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eq := func(t *testing.T, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	isNil := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, redis.Nil) {
			t.Fatalf("want nil reply, got err=%v", err)
		}
	}
	errText := func(t *testing.T, err error, want string) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Fatalf("want error %q, got %v", want, err)
		}
	}
	errPrefix := func(t *testing.T, err error, prefix string) {
		t.Helper()
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Fatalf("want error starting with %q, got %v", prefix, err)
		}
	}
	ttlIn := func(t *testing.T, key string, lo, hi time.Duration) {
		t.Helper()
		d, err := rdb.TTL(ctx, key).Result()
		ok(t, err)
		if d < lo || d > hi {
			t.Fatalf("TTL %s = %v, want in [%v, %v]", key, d, lo, hi)
		}
	}

	t.Run("Handshake", func(t *testing.T) {
		// CLIENT INFO names the protocol the connection negotiated.
		info, err := rdb.Do(ctx, "CLIENT", "INFO").Text()
		ok(t, err)
		if !strings.Contains(info, fmt.Sprintf(" resp=%d", proto)) {
			t.Fatalf("CLIENT INFO %q does not say resp=%d", info, proto)
		}
	})

	t.Run("Connection", func(t *testing.T) {
		v, err := rdb.Ping(ctx).Result()
		ok(t, err)
		eq(t, v, "PONG")
		v, err = rdb.Do(ctx, "PING", "hello world").Text()
		ok(t, err)
		eq(t, v, "hello world")
		v, err = rdb.Echo(ctx, "x\x00y").Result()
		ok(t, err)
		eq(t, v, "x\x00y")
		ok(t, rdb.Do(ctx, "SELECT", 0).Err())
		errPrefix(t, rdb.Do(ctx, "SELECT", 1).Err(), "ERR ")
		ok(t, rdb.Ping(ctx).Err()) // still on db 0 and usable
	})

	t.Run("Client", func(t *testing.T) {
		conn := rdb.Conn()
		defer conn.Close()
		ok(t, conn.ClientSetName(ctx, "e2e-conn").Err())
		name, err := conn.ClientGetName(ctx).Result()
		ok(t, err)
		eq(t, name, "e2e-conn")
		id, err := conn.ClientID(ctx).Result()
		ok(t, err)
		if id <= 0 {
			t.Fatalf("CLIENT ID = %d", id)
		}
		info, err := conn.Do(ctx, "CLIENT", "INFO").Text()
		ok(t, err)
		for _, want := range []string{"id=" + strconv.FormatInt(id, 10) + " ", "name=e2e-conn"} {
			if !strings.Contains(info, want) {
				t.Fatalf("CLIENT INFO %q lacks %q", info, want)
			}
		}
		list, err := conn.ClientList(ctx).Result()
		ok(t, err)
		if !strings.Contains(list, "id="+strconv.FormatInt(id, 10)+" ") || !strings.Contains(list, "name=e2e-conn") {
			t.Fatalf("CLIENT LIST %q lacks this connection", list)
		}
		if upstreamRedis && redisVersionBelow(t, rdb, 7, 2) {
			t.Log("CLIENT SETINFO needs Redis >= 7.2; skipped")
			return
		}
		ok(t, conn.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "e2e").Err())
		ok(t, conn.Do(ctx, "CLIENT", "SETINFO", "LIB-VER", "1.2.3").Err())
		info, err = conn.Do(ctx, "CLIENT", "INFO").Text()
		ok(t, err)
		if !strings.Contains(info, "lib-name=e2e") || !strings.Contains(info, "lib-ver=1.2.3") {
			t.Fatalf("CLIENT INFO %q lacks lib-name/lib-ver", info)
		}
	})

	t.Run("Command", func(t *testing.T) {
		n, err := rdb.Do(ctx, "COMMAND", "COUNT").Int()
		ok(t, err)
		if n < 30 {
			t.Fatalf("COMMAND COUNT = %d", n)
		}
		names, err := rdb.CommandList(ctx, nil).Result()
		ok(t, err)
		have := map[string]bool{}
		top := 0 // COMMAND LIST also names subcommands ("client|list"); COMMAND COUNT does not
		for _, c := range names {
			have[strings.ToLower(c)] = true
			if !strings.Contains(c, "|") {
				top++
			}
		}
		if top != n {
			t.Fatalf("COMMAND LIST has %d commands, COMMAND COUNT says %d", top, n)
		}
		for _, c := range []string{"get", "set", "del", "exists", "ping", "info", "command", "scan", "hello", "auth"} {
			if !have[c] {
				t.Errorf("COMMAND LIST lacks %q", c)
			}
		}
		cmds, err := rdb.Command(ctx).Result()
		ok(t, err)
		if g := cmds["get"]; g == nil || g.Arity != 2 || g.FirstKeyPos != 1 {
			t.Fatalf("COMMAND: get = %+v", g)
		}
		if st := cmds["set"]; st == nil || st.Arity != -3 {
			t.Fatalf("COMMAND: set = %+v", st)
		}
		v, err := rdb.Do(ctx, "COMMAND", "INFO", "get", "set", "nosuchcommand").Slice()
		ok(t, err)
		if len(v) != 3 || v[0] == nil || v[1] == nil || v[2] != nil {
			t.Fatalf("COMMAND INFO get set nosuchcommand = %#v", v)
		}
		docs, err := rdb.Do(ctx, "COMMAND", "DOCS", "get").Result()
		ok(t, err)
		if !strings.Contains(fmt.Sprint(docs), "summary") {
			t.Fatalf("COMMAND DOCS get = %v", docs)
		}
	})

	t.Run("Info", func(t *testing.T) {
		ok(t, rdb.Set(ctx, "info:k", "v", 0).Err())
		all, err := rdb.Info(ctx, "all").Result()
		ok(t, err)
		for _, h := range []string{"# Server", "# Clients", "# Memory", "# Stats", "# Keyspace"} {
			if !strings.Contains(all, h+"\r\n") {
				t.Errorf("INFO all lacks section %q", h)
			}
		}
		def, err := rdb.Info(ctx).Result()
		ok(t, err)
		if !strings.Contains(def, "# Server\r\n") || !strings.Contains(def, "redis_version:") {
			t.Errorf("INFO lacks the server section")
		}
		for section, field := range map[string]string{
			"server":   "redis_version:",
			"clients":  "connected_clients:",
			"memory":   "used_memory:",
			"stats":    "total_commands_processed:",
			"keyspace": "db0:keys=",
		} {
			v, err := rdb.Info(ctx, section).Result()
			ok(t, err)
			if !strings.Contains(v, field) {
				t.Errorf("INFO %s lacks %q:\n%s", section, field, v)
			}
		}
		srv, err := rdb.Info(ctx, "server").Result()
		ok(t, err)
		if strings.Contains(srv, "# Memory") {
			t.Errorf("INFO server also returned the memory section")
		}
	})

	t.Run("Config", func(t *testing.T) {
		m, err := rdb.ConfigGet(ctx, "maxmemory").Result()
		ok(t, err)
		eq(t, m["maxmemory"], strconv.Itoa(1<<30))
		ok(t, rdb.ConfigSet(ctx, "maxmemory", "2gb").Err())
		m, err = rdb.ConfigGet(ctx, "maxmemory").Result()
		ok(t, err)
		eq(t, m["maxmemory"], strconv.Itoa(2<<30))
		ok(t, rdb.ConfigSet(ctx, "maxmemory", "1gb").Err())
		ok(t, rdb.ConfigSet(ctx, "timeout", "30").Err())
		m, err = rdb.ConfigGet(ctx, "timeout").Result()
		ok(t, err)
		eq(t, m["timeout"], "30")
		ok(t, rdb.ConfigSet(ctx, "timeout", "0").Err())
		errPrefix(t, rdb.ConfigSet(ctx, "maxmemory", "lots").Err(), "ERR ")
	})

	t.Run("Time", func(t *testing.T) {
		tm, err := rdb.Time(ctx).Result()
		ok(t, err)
		// A sanity bound on the clock, not a timing assertion.
		if d := time.Since(tm); d > time.Hour || d < -time.Hour {
			t.Fatalf("TIME = %v, local clock %v", tm, time.Now())
		}
	})

	t.Run("Strings", func(t *testing.T) {
		ok(t, rdb.FlushDB(ctx).Err())
		isNil(t, rdb.Get(ctx, "s:missing").Err())
		ok(t, rdb.Set(ctx, "s:a", "1", 0).Err())
		v, err := rdb.Get(ctx, "s:a").Result()
		ok(t, err)
		eq(t, v, "1")

		// SET options, in the raw forms clients send.
		isNil(t, rdb.Do(ctx, "SET", "s:a", "2", "NX").Err())
		ok(t, rdb.Do(ctx, "SET", "s:a", "2", "XX").Err())
		isNil(t, rdb.Do(ctx, "SET", "s:nx", "v", "XX").Err())
		eq(t, rdb.Exists(ctx, "s:nx").Val(), 0)
		ok(t, rdb.Do(ctx, "SET", "s:nx", "v", "NX").Err())
		old, err := rdb.Do(ctx, "SET", "s:a", "3", "GET").Text()
		ok(t, err)
		eq(t, old, "2")
		isNil(t, rdb.Do(ctx, "SET", "s:new", "x", "GET").Err())
		ok(t, rdb.Do(ctx, "SET", "s:ex", "v", "EX", 100).Err())
		ttlIn(t, "s:ex", time.Second, 100*time.Second)
		ok(t, rdb.Do(ctx, "SET", "s:px", "v", "PX", 100000).Err())
		ttlIn(t, "s:px", time.Second, 100*time.Second)
		ok(t, rdb.Do(ctx, "SET", "s:exat", "v", "EXAT", time.Now().Add(100*time.Second).Unix()).Err())
		ttlIn(t, "s:exat", time.Second, 101*time.Second)
		ok(t, rdb.Do(ctx, "SET", "s:pxat", "v", "PXAT", time.Now().Add(100*time.Second).UnixMilli()).Err())
		ttlIn(t, "s:pxat", time.Second, 101*time.Second)
		ok(t, rdb.Do(ctx, "SET", "s:ex", "w", "KEEPTTL").Err())
		ttlIn(t, "s:ex", time.Second, 100*time.Second)
		eq(t, rdb.Get(ctx, "s:ex").Val(), "w")
		ok(t, rdb.Do(ctx, "SET", "s:ex", "z").Err())
		eq(t, rdb.TTL(ctx, "s:ex").Val(), time.Duration(-1))
		errPrefix(t, rdb.Do(ctx, "SET", "s:a", "v", "EX", 0).Err(), "ERR invalid expire time")
		errPrefix(t, rdb.Do(ctx, "SET", "s:a", "v", "NX", "XX").Err(), "ERR syntax error")
		errPrefix(t, rdb.Do(ctx, "SET", "s:a", "v", "EX", "ten").Err(), "ERR ")

		// The typed helpers go-redis users call.
		ok(t, rdb.SetArgs(ctx, "s:args", "v", redis.SetArgs{Mode: "NX", TTL: time.Minute}).Err())
		ttlIn(t, "s:args", time.Second, time.Minute)
		b, err := rdb.SetNX(ctx, "s:setnx", "1", 0).Result()
		ok(t, err)
		eq(t, b, true)
		b, err = rdb.SetNX(ctx, "s:setnx", "2", 0).Result()
		ok(t, err)
		eq(t, b, false)
		ok(t, rdb.Do(ctx, "SETEX", "s:setex", 100, "v").Err())
		ttlIn(t, "s:setex", time.Second, 100*time.Second)
		eq(t, rdb.Get(ctx, "s:setex").Val(), "v")
		ok(t, rdb.Do(ctx, "PSETEX", "s:psetex", 100000, "v").Err())
		ttlIn(t, "s:psetex", time.Second, 100*time.Second)
		errPrefix(t, rdb.Do(ctx, "SETEX", "s:setex3", 0, "v").Err(), "ERR invalid expire time")

		v, err = rdb.GetDel(ctx, "s:setnx").Result()
		ok(t, err)
		eq(t, v, "1")
		isNil(t, rdb.GetDel(ctx, "s:setnx").Err())
		v, err = rdb.GetEx(ctx, "s:a", 100*time.Second).Result()
		ok(t, err)
		eq(t, v, "3")
		ttlIn(t, "s:a", time.Second, 100*time.Second)
		ok(t, rdb.Do(ctx, "GETEX", "s:a", "PERSIST").Err())
		eq(t, rdb.TTL(ctx, "s:a").Val(), time.Duration(-1))
		ok(t, rdb.Do(ctx, "GETEX", "s:a", "PX", 100000).Err())
		ttlIn(t, "s:a", time.Second, 100*time.Second)
		isNil(t, rdb.GetEx(ctx, "s:missing", time.Minute).Err())

		ok(t, rdb.MSet(ctx, "m:1", "a", "m:2", "b").Err())
		vals, err := rdb.MGet(ctx, "m:1", "m:missing", "m:2").Result()
		ok(t, err)
		if len(vals) != 3 || vals[0] != "a" || vals[1] != nil || vals[2] != "b" {
			t.Fatalf("MGET = %#v", vals)
		}
		b, err = rdb.MSetNX(ctx, "m:2", "x", "m:3", "c").Result()
		ok(t, err)
		eq(t, b, false)
		eq(t, rdb.Exists(ctx, "m:3").Val(), 0)
		eq(t, rdb.Get(ctx, "m:2").Val(), "b")
		b, err = rdb.MSetNX(ctx, "m:3", "c", "m:4", "d").Result()
		ok(t, err)
		eq(t, b, true)
		errPrefix(t, rdb.Do(ctx, "MSET", "m:1").Err(), "ERR wrong number of arguments")

		n, err := rdb.Exists(ctx, "m:1", "m:2", "m:missing", "m:1").Result()
		ok(t, err)
		eq(t, n, 3) // a key named twice counts twice
		n, err = rdb.StrLen(ctx, "m:1").Result()
		ok(t, err)
		eq(t, n, 1)
		eq(t, rdb.StrLen(ctx, "m:missing").Val(), 0)
		eq(t, rdb.Type(ctx, "m:1").Val(), "string")
		eq(t, rdb.Type(ctx, "m:missing").Val(), "none")
		n, err = rdb.Del(ctx, "m:1", "m:2", "m:missing").Result()
		ok(t, err)
		eq(t, n, 2)
		n, err = rdb.Unlink(ctx, "m:3", "m:4", "m:missing").Result()
		ok(t, err)
		eq(t, n, 2)
		n, err = rdb.Touch(ctx, "s:a", "s:nx", "m:missing").Result()
		ok(t, err)
		eq(t, n, 2)

		big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		ok(t, rdb.Set(ctx, "s:big", big, 0).Err())
		v, err = rdb.Get(ctx, "s:big").Result()
		ok(t, err)
		if v != big {
			t.Fatalf("1 MiB value came back different (len %d)", len(v))
		}
	})

	t.Run("Expire", func(t *testing.T) {
		ok(t, rdb.Set(ctx, "e:k", "v", 0).Err())
		eq(t, rdb.TTL(ctx, "e:k").Val(), time.Duration(-1))
		eq(t, rdb.PTTL(ctx, "e:k").Val(), time.Duration(-1))
		eq(t, rdb.TTL(ctx, "e:missing").Val(), time.Duration(-2))
		eq(t, rdb.PTTL(ctx, "e:missing").Val(), time.Duration(-2))
		eq(t, rdb.Expire(ctx, "e:k", 100*time.Second).Val(), true)
		ttlIn(t, "e:k", time.Second, 100*time.Second)
		if d := rdb.PTTL(ctx, "e:k").Val(); d <= 0 || d > 100*time.Second {
			t.Fatalf("PTTL = %v", d)
		}
		eq(t, rdb.Expire(ctx, "e:missing", time.Minute).Val(), false)
		eq(t, rdb.PExpire(ctx, "e:k", 200*time.Second).Val(), true)
		ttlIn(t, "e:k", 100*time.Second, 200*time.Second)
		eq(t, rdb.ExpireAt(ctx, "e:k", time.Now().Add(300*time.Second)).Val(), true)
		ttlIn(t, "e:k", 200*time.Second, 301*time.Second)
		eq(t, rdb.Persist(ctx, "e:k").Val(), true)
		eq(t, rdb.TTL(ctx, "e:k").Val(), time.Duration(-1))
		eq(t, rdb.Persist(ctx, "e:k").Val(), false)
		// An expiry time in the past deletes the key.
		eq(t, rdb.ExpireAt(ctx, "e:k", time.Now().Add(-time.Hour)).Val(), true)
		eq(t, rdb.Exists(ctx, "e:k").Val(), 0)

		// A key set with PX 100 goes away on its own. Poll: this asserts behaviour, not timing.
		ok(t, rdb.Do(ctx, "SET", "e:short", "v", "PX", 100).Err())
		waitFor(t, 30*time.Second, "e:short to expire", func() bool {
			err := rdb.Get(ctx, "e:short").Err()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			return errors.Is(err, redis.Nil)
		})
		eq(t, rdb.Exists(ctx, "e:short").Val(), 0)
	})

	t.Run("Keyspace", func(t *testing.T) {
		ok(t, rdb.FlushAll(ctx).Err())
		eq(t, rdb.DBSize(ctx).Val(), 0)
		isNil(t, rdb.RandomKey(ctx).Err())
		const n = 1000
		want := map[string]bool{}
		pipe := rdb.Pipeline()
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("scan:%04d", i)
			if i%10 == 0 {
				k = fmt.Sprintf("other:%04d", i)
			}
			want[k] = true
			pipe.Set(ctx, k, "v", 0)
		}
		_, err := pipe.Exec(ctx)
		ok(t, err)
		eq(t, rdb.DBSize(ctx).Val(), n)

		scanAll := func(match, typ string) map[string]bool {
			t.Helper()
			seen := map[string]bool{}
			var cursor uint64
			for i := 0; ; i++ {
				if i > 100*n {
					t.Fatal("SCAN never returned cursor 0")
				}
				var keys []string
				var err error
				if typ == "" {
					keys, cursor, err = rdb.Scan(ctx, cursor, match, 37).Result()
				} else {
					keys, cursor, err = rdb.ScanType(ctx, cursor, match, 37, typ).Result()
				}
				ok(t, err)
				for _, k := range keys {
					seen[k] = true
				}
				if cursor == 0 {
					return seen
				}
			}
		}
		seen := scanAll("", "")
		if len(seen) != n {
			t.Fatalf("SCAN returned %d distinct keys, want %d", len(seen), n)
		}
		for k := range want {
			if !seen[k] {
				t.Fatalf("SCAN never returned %q", k)
			}
		}
		other := scanAll("other:*", "")
		if len(other) != n/10 {
			t.Fatalf("SCAN MATCH other:* returned %d keys, want %d", len(other), n/10)
		}
		for k := range other {
			if !strings.HasPrefix(k, "other:") {
				t.Fatalf("SCAN MATCH other:* returned %q", k)
			}
		}
		eq(t, len(scanAll("", "string")), n)
		eq(t, len(scanAll("", "list")), 0)
		eq(t, len(scanAll("nomatch*", "")), 0)

		keys, err := rdb.Keys(ctx, "other:*").Result()
		ok(t, err)
		sort.Strings(keys)
		if len(keys) != n/10 || keys[0] != "other:0000" {
			t.Fatalf("KEYS other:* = %d keys starting %v", len(keys), keys[:min(3, len(keys))])
		}
		eq(t, len(rdb.Keys(ctx, "*").Val()), n)
		eq(t, len(rdb.Keys(ctx, "scan:000?").Val()), 9)
		rk, err := rdb.RandomKey(ctx).Result()
		ok(t, err)
		if !want[rk] {
			t.Fatalf("RANDOMKEY = %q, not a stored key", rk)
		}

		ok(t, rdb.FlushDBAsync(ctx).Err())
		waitFor(t, 30*time.Second, "FLUSHDB ASYNC to empty the keyspace", func() bool { return rdb.DBSize(ctx).Val() == 0 })
		ok(t, rdb.Set(ctx, "f:1", "v", 0).Err())
		ok(t, rdb.Do(ctx, "FLUSHDB", "SYNC").Err())
		eq(t, rdb.DBSize(ctx).Val(), 0)
		ok(t, rdb.Set(ctx, "f:1", "v", 0).Err())
		ok(t, rdb.FlushAllAsync(ctx).Err())
		waitFor(t, 30*time.Second, "FLUSHALL ASYNC to empty the keyspace", func() bool { return rdb.DBSize(ctx).Val() == 0 })
		ok(t, rdb.Set(ctx, "f:1", "v", 0).Err())
		ok(t, rdb.Do(ctx, "FLUSHALL", "SYNC").Err())
		eq(t, rdb.DBSize(ctx).Val(), 0)
		isNil(t, rdb.Get(ctx, "f:1").Err())
	})

	t.Run("Errors", func(t *testing.T) {
		errText(t, rdb.Do(ctx, "FOO", "a", "b").Err(), "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
		errText(t, rdb.Do(ctx, "FOO").Err(), "ERR unknown command 'FOO', with args beginning with: ")
		errText(t, rdb.Do(ctx, "GET").Err(), "ERR wrong number of arguments for 'get' command")
		errText(t, rdb.Do(ctx, "get", "a", "b").Err(), "ERR wrong number of arguments for 'get' command")
		errText(t, rdb.Do(ctx, "SET", "a").Err(), "ERR wrong number of arguments for 'set' command")
		errPrefix(t, rdb.Do(ctx, "CLIENT", "NOSUCHSUB").Err(), "ERR unknown subcommand")
		ok(t, rdb.Ping(ctx).Err())
	})
}

// redisVersionBelow reports whether INFO server's redis_version is below major.minor.
func redisVersionBelow(t *testing.T, rdb *redis.Client, major, minor int) bool {
	t.Helper()
	info, err := rdb.Info(ctxT(t), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, found := strings.CutPrefix(line, "redis_version:"); found {
			var ma, mi int
			fmt.Sscanf(v, "%d.%d", &ma, &mi)
			return ma < major || (ma == major && mi < minor)
		}
	}
	t.Fatal("INFO server has no redis_version")
	return false
}
