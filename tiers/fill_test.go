package tiers_test

import (
	"errors"
	"testing"

	"kvresp/tiers"
)

func TestFill(t *testing.T) {
	f := tiers.NewFill()
	got := make(chan int)
	go func() {
		n, _, _ := f.Wait(0)
		got <- n
	}()
	f.Progress(10)
	if n := <-got; n != 10 {
		t.Fatalf("Wait(0) = %d, want 10", n)
	}
	f.Progress(5) // never goes back
	if n, done, err := f.Wait(9); n != 10 || done || err != nil {
		t.Fatalf("Wait(9) = %d %v %v", n, done, err)
	}
	broken := errors.New("broken")
	f.Finish(broken)
	f.Finish(nil) // only the first counts
	<-f.Done()
	if n, done, err := f.Wait(10); n != 10 || !done || !errors.Is(err, broken) || !errors.Is(f.Err(), broken) {
		t.Fatalf("after Finish: %d %v %v", n, done, err)
	}
}
