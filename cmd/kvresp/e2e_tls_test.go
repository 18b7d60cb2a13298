package main_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"kvresp/internal/redistest"
)

// selfSignedTLS writes a fresh self-signed certificate for 127.0.0.1/localhost and returns the
// files for the server and a client config that trusts exactly that certificate.
func selfSignedTLS(t *testing.T) *tlsFiles {
	t.Helper()
	certFile, keyFile, pool := redistest.SelfSignedCert(t, t.TempDir())
	return &tlsFiles{certFile: certFile, keyFile: keyFile,
		config: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
}

func TestE2ETLS(t *testing.T) {
	certs := selfSignedTLS(t)
	s := startServer(t, serverOptions{tls: certs})
	ctx := ctxT(t)

	value := bytes.Repeat([]byte("tls!"), 1<<18) // 1 MiB
	for _, proto := range []int{3, 2} {
		rdb := redis.NewClient(&redis.Options{Addr: s.tlsAddr, Protocol: proto, TLSConfig: certs.config})
		if err := rdb.Set(ctx, "tls:k", value, 0).Err(); err != nil {
			t.Fatalf("RESP%d over TLS: SET: %v", proto, err)
		}
		got, err := rdb.Get(ctx, "tls:k").Bytes()
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("RESP%d over TLS: GET returned %d bytes, %v", proto, len(got), err)
		}
		rdb.Close()
	}

	// A plaintext client on the TLS port gets no RESP reply.
	c, err := net.Dial("tcp", s.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRespConn(t, c)
	rc.c.Write([]byte("PING\r\n"))
	b := make([]byte, 7)
	n, _ := io.ReadFull(rc.r, b)
	if string(b[:n]) == "+PONG\r\n" {
		t.Fatal("the TLS port answered a plaintext PING")
	}
	c.Close()

	t.Run("redis-cli", func(t *testing.T) {
		cli := needTool(t, "redis-cli")
		help, _ := exec.Command(cli, "--help").CombinedOutput()
		if !strings.Contains(string(help), "--tls") {
			redistest.Missing(t, "redis-cli was built without TLS")
		}
		_, port, _ := net.SplitHostPort(s.tlsAddr)
		args := []string{"--tls", "--insecure", "-h", "127.0.0.1", "-p", port}
		if got := runTool(t, nil, cli, append(args, "PING")...); got != "PONG\n" {
			t.Fatalf("redis-cli --tls PING = %q", got)
		}
		if got := runTool(t, nil, cli, append(args, "SET", "tls:cli", "over tls")...); got != "OK\n" {
			t.Fatalf("redis-cli --tls SET = %q", got)
		}
		if got := runTool(t, nil, cli, append(args, "GET", "tls:cli")...); got != "over tls\n" {
			t.Fatalf("redis-cli --tls GET = %q", got)
		}
		// And verifying the certificate instead of skipping the check.
		args = []string{"--tls", "--cacert", certs.certFile, "--sni", "localhost", "-h", "127.0.0.1", "-p", port}
		if got := runTool(t, nil, cli, append(args, "STRLEN", "tls:k")...); got != "1048576\n" {
			t.Fatalf("redis-cli --tls --cacert STRLEN = %q", got)
		}
	})
}
