package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// The contract of GetState/SetState and TryLease/ReleaseLease (paygate's
// stateStore).
func testStateAndLeases(t *testing.T, s Store) {
	ctx := context.Background()

	if v, err := s.GetState(ctx, "k"); err != nil || v != "" {
		t.Fatalf("missing key: %q, %v", v, err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.SetState(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetState(ctx, "k"); err != nil || got != v {
			t.Fatalf("after SetState(%q): %q, %v", v, got, err)
		}
	}

	now := time.Now()
	try := func(holder string, at time.Time, want bool) {
		t.Helper()
		if got, err := s.TryLease(ctx, "job", holder, at, time.Minute); err != nil || got != want {
			t.Fatalf("TryLease(%s, +%v) = %v, %v; want %v", holder, at.Sub(now), got, err, want)
		}
	}
	try("a", now, true)                                     // free
	try("b", now.Add(30*time.Second), false)                // held by a
	try("a", now.Add(30*time.Second), true)                 // a renews: now until +90 s
	try("b", now.Add(80*time.Second), false)                // still a's, thanks to the renewal
	try("b", now.Add(90*time.Second), true)                 // expired: b takes it over
	if err := s.ReleaseLease(ctx, "job", "a"); err != nil { // not a's any more: nothing happens
		t.Fatal(err)
	}
	try("a", now.Add(100*time.Second), false)
	if err := s.ReleaseLease(ctx, "job", "b"); err != nil {
		t.Fatal(err)
	}
	try("a", now.Add(100*time.Second), true) // released: free at once
	if ok, err := s.TryLease(ctx, "other", "x", now, time.Minute); err != nil || !ok {
		t.Fatalf("another lease: %v %v", ok, err)
	}

	// Of many concurrent takers, exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.TryLease(ctx, "race", fmt.Sprint("h", i), now, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent takers won the lease", wins)
	}
}

// PaymentsToReconcile pages by (created_at, id) after a payment id.
func testPaymentsToReconcileKeyset(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var want []string
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("pay_keyset%d", i)
		p := NewPayment(id, at.Add(time.Duration(i/3)*time.Second)) // three share each created_at
		if err := s.InsertPayment(ctx, p); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	final := NewPayment("pay_keysetfinal", at, func(p *paygate.Payment) { p.Status = paygate.StatusSucceeded })
	if err := s.InsertPayment(ctx, final); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		ids, err := s.PaymentsToReconcile(ctx, at.Add(-time.Hour), at, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids...)
		if len(ids) < 2 {
			break
		}
		after = ids[len(ids)-1]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	// An after that no longer exists starts from the first.
	if ids, err := s.PaymentsToReconcile(ctx, at.Add(-time.Hour), at, "pay_gone", 1); err != nil || len(ids) != 1 || ids[0] != want[0] {
		t.Fatalf("after a missing id: %v %v", ids, err)
	}
}
