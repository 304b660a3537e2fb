package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

// TestReadsAreOneSnapshot: a payment read (alone, by a Stripe id, or in a
// page) while refunds are being reserved on it shows its amountRefunded and
// its refunds as of one moment: never a refund beside a row that does not
// count it yet (they are two statements; on PostgreSQL's default READ
// COMMITTED a commit between them split them).
func TestReadsAreOneSnapshot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := store.New(testenv.NewPool(t))
	p := newPayment("pay_snapshot", t0)
	p.Status, p.Amount, p.PaymentIntentID = paygate.StatusSucceeded, 1_000_000, "pi_snapshot"
	if err := s.InsertPayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; !stop.Load() && i < 3000; i++ {
			_, err := s.UpdatePayment(ctx, p.ID, func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
				p.Refunds = append(p.Refunds, paygate.Refund{ID: fmt.Sprintf("rf_snap%d", i), Amount: 1, Status: paygate.RefundPending, CreatedAt: t0, UpdatedAt: t0})
				p.AmountRefunded++
				return nil, nil
			})
			if err != nil {
				done <- err
				return
			}
		}
	}()
	check := func(how string, got *paygate.Payment) {
		t.Helper()
		var sum int64
		for _, r := range got.Refunds {
			sum += r.Amount
		}
		if sum != got.AmountRefunded {
			t.Fatalf("%s: amountRefunded %d beside refunds summing to %d", how, got.AmountRefunded, sum)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		got, err := s.GetPayment(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("GetPayment", got)
		if got, err = s.GetPaymentByStripeID(ctx, "pi_snapshot"); err != nil {
			t.Fatal(err)
		}
		check("GetPaymentByStripeID", got)
		page, err := s.ListPayments(ctx, paygate.PaymentFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Items {
			check("ListPayments", &page.Items[i])
		}
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
