package paygate_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// lockPaymentRow holds a payment's row lock in a transaction of its own
// until the test ends (or release is called); pid is its backend's, to
// find the sessions it blocks (and only those: other tests share the
// database).
func (e *env) lockPaymentRow(id string) (release func(), pid int) {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM paygate_payments WHERE id = $1 FOR UPDATE`, id).Scan(&pid); err != nil {
		e.t.Fatal(err)
	}
	release = func() { _ = tx.Rollback(ctx) }
	e.t.Cleanup(release)
	return release, pid
}

// TestWebhookBatchCanceledByTheDatabaseIs503: an operator cancels the
// query of a webhook batch that waits for a payment's lock
// (pg_cancel_backend, or a statement_timeout): SQLSTATE 57014, class 57
// "operator intervention". Nothing is stored, so the event is answered as
// an outage, 503 with Retry-After, not 500 internal.
func TestWebhookBatchCanceledByTheDatabaseIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	if e.pool == nil {
		t.Skip("PostgreSQL")
	}
	p := e.webhookPayment(paygate.MethodIntent, 1000)
	_, holder := e.lockPaymentRow(p.ID)
	evID := "evt_canceled_" + p.ID[len("pay_"):]
	got := e.postWebhookAsync(stripeEventJSON(evID, "payment_intent.succeeded", "2023-10-16",
		piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_"+p.ID)))
	e.waitForLockWaits(holder, 1)
	if _, err := e.pool.Exec(context.Background(), `SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE $1::int = ANY(pg_blocking_pids(pid))`, holder); err != nil {
		t.Fatal(err)
	}
	var status int
	select {
	case status = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	if _, err := e.gw.GetWebhookEvent(context.Background(), evID); err == nil {
		t.Fatalf("the event was stored though its batch was canceled (answered %d)", status)
	}
	if status != http.StatusServiceUnavailable {
		t.Fatalf("canceled batch answered %d, want 503 (nothing stored; Stripe must retry, it is not a bug)", status)
	}
}

// waitForLockWaits waits (10 s at most) until n sessions wait, directly or
// behind one another, for a lock that the session holder holds.
func (e *env) waitForLockWaits(holder, n int) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		waiting := e.lockWaits(holder)
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d sessions wait for a lock, want %d", waiting, n)
		}
	}
}

// lockWaits counts the sessions that wait, directly or behind one another,
// for a lock that the session holder holds.
func (e *env) lockWaits(holder int) int {
	e.t.Helper()
	var waiting int
	if err := e.pool.QueryRow(context.Background(), `WITH RECURSIVE w(pid) AS (
		SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))
		UNION SELECT a.pid FROM pg_stat_activity a, w WHERE w.pid = ANY(pg_blocking_pids(a.pid)))
		SELECT count(*) FROM w`, holder).Scan(&waiting); err != nil {
		e.t.Fatal(err)
	}
	return waiting
}

// TestWebhookEventsOfALockedPaymentDoNotStopOthers: one payment's row is
// held while Stripe delivers two of its events (payment_intent.succeeded
// and checkout.session.completed come together). The first batch waits for
// the lock; the second event waits in the queue (a batch started beside
// the stuck one for it would wait for the same lock, and no batch would be
// left for anyone else), and the event of another payment is answered at
// once. One locked payment does not stop the webhooks of every other.
func TestWebhookEventsOfALockedPaymentDoNotStopOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	if e.pool == nil {
		t.Skip("PostgreSQL row locks")
	}
	a, b := e.webhookPayment(paygate.MethodIntent, 1000), e.webhookPayment(paygate.MethodIntent, 2000)
	release, holder := e.lockPaymentRow(a.ID)
	first := e.postWebhookAsync(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16",
		piObject(a.PaymentIntentID, "succeeded", 1000, a.ID, "ch_"+a.ID)))
	e.waitForLockWaits(holder, 1)
	second := e.postWebhookAsync(stripeEventJSON("", "payment_intent.processing", "2023-10-16",
		piObject(a.PaymentIntentID, "processing", 1000, a.ID, "")))
	time.Sleep(100 * time.Millisecond) // past the 50 ms after which a batch starts beside a stuck one
	other := e.postWebhookAsync(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16",
		piObject(b.PaymentIntentID, "succeeded", 2000, b.ID, "ch_"+b.ID)))
	answeredWhileLocked(t, other, release, "the event of another payment")
	if n := e.lockWaits(holder); n != 1 {
		t.Errorf("%d sessions wait for payment a's lock, want 1 (the first batch; the second event waits in the queue)", n)
	}
	release()
	if s1, s2 := <-first, <-second; s1 != 200 || s2 != 200 {
		t.Fatalf("payment a's events: %d %d", s1, s2)
	}
}

// TestWebhookResendDoesNotWaitForAnUnrelatedStuckBatch: while a batch is
// stuck on one payment's lock, a batch beside it does not wait for it
// unless an event of it may need what the stuck batch adds. A resend — the
// most common delivery Stripe's retries make — sends its batch to the
// event-by-event path, which waited for every earlier batch first: the
// resend of another payment's event, and every event sharing its batch,
// hung until the unrelated payment's lock was released (or 30 s passed).
func TestWebhookResendDoesNotWaitForAnUnrelatedStuckBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookSecrets(whsecNew))
	if e.pool == nil {
		t.Skip("PostgreSQL row locks")
	}
	a, b := e.webhookPayment(paygate.MethodIntent, 1000), e.webhookPayment(paygate.MethodIntent, 2000)
	resend := stripeEventJSON("", "payment_intent.succeeded", "2023-10-16",
		piObject(b.PaymentIntentID, "succeeded", 2000, b.ID, "ch_"+b.ID))
	e.send(resend).must(t, 200, nil) // delivered once, stored
	release, holder := e.lockPaymentRow(a.ID)
	stuck := e.postWebhookAsync(stripeEventJSON("", "payment_intent.succeeded", "2023-10-16",
		piObject(a.PaymentIntentID, "succeeded", 1000, a.ID, "ch_"+a.ID)))
	e.waitForLockWaits(holder, 1)
	again := e.postWebhookAsync(resend) // Stripe's retry of b's event
	answeredWhileLocked(t, again, release, "the resend of payment b's event")
	release()
	if got := <-stuck; got != 200 {
		t.Fatalf("payment a's event: %d", got)
	}
}

// answeredWhileLocked waits 3 s at most, while payment a's lock is held,
// for what's answer, which must be 200; if it does not come, release lets
// it go and the test fails.
func answeredWhileLocked(t *testing.T, answer <-chan int, release func(), what string) {
	t.Helper()
	select {
	case got := <-answer:
		if got != 200 {
			t.Fatalf("%s: %d", what, got)
		}
	case <-time.After(3 * time.Second):
		release()
		<-answer
		t.Fatalf("%s waited 3 s for the batch stuck on payment a's lock", what)
	}
}
