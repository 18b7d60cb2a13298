package bench

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
)

func TestKeyFormats(t *testing.T) {
	if got, want := string(respKey(nil, "m/x", 0x1a, 0x2b, 0x9f2c00e1)), "m/x@0000001a@2b@9f2c00e1"; got != want {
		t.Errorf("respKey = %q, want %q", got, want)
	}
	if got, want := string(respKey(nil, "m", 0, 0, 1<<63)), "m@00000000@0@8000000000000000"; got != want {
		t.Errorf("respKey = %q, want %q", got, want)
	}
	if got, want := string(redisKey(nil, "meta-llama/Llama-3.1-8B-Instruct", 0xe1)),
		"meta-llama/Llama-3.1-8B-Instruct@1@0@e1@bfloat16"; got != want {
		t.Errorf("redisKey = %q, want %q", got, want)
	}
	// Keys as the workload builds them.
	pool := newConvPool(10, 4, 0)
	re := regexp.MustCompile(`^model@[0-9a-f]{8}@[0-9a-f]+@[0-9a-f]+$`)
	for _, h := range pool.conversation(rand.New(rand.NewPCG(1, 1))) {
		if k := respKey(nil, "model", 0, 0, h); !re.Match(k) {
			t.Errorf("key %q does not match %s", k, re)
		}
	}
}

func TestConversationsSharePrefixes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := newConvPool(4, 5, 1)
	first := pool.conversation(rng)
	if len(first) < 1 || len(first) > 5 {
		t.Fatalf("first conversation has %d chunks, want 1..5", len(first))
	}
	pool.add(first)
	for range 20 {
		c := pool.conversation(rng)
		if c[0] != first[0] {
			t.Fatalf("with reuse 1 and one remembered conversation, %x does not start with %x", c, first[0])
		}
		// The chain extends past the shared prefix with new hashes.
		n := 0
		for n < len(c) && n < len(first) && c[n] == first[n] {
			n++
		}
		if n == len(c) || slices.Contains(first, c[len(c)-1]) {
			t.Fatalf("conversation %x adds nothing to %x", c, first)
		}
	}
	pool = newConvPool(4, 5, 0)
	pool.add(first)
	if c := pool.conversation(rng); c[0] == first[0] {
		t.Fatalf("with reuse 0, %x shares a prefix with %x", c, first)
	}
	for range 10 {
		pool.add([]uint64{1})
	}
	if len(pool.convs) != 4 {
		t.Fatalf("pool holds %d conversations, want its size 4", len(pool.convs))
	}
}
