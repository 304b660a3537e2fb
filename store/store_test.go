package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/internal/testenv"
	"github.com/numedapp/paygate/store"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

func newPayment(id string, at time.Time, mut ...func(*paygate.Payment)) *paygate.Payment {
	p := &paygate.Payment{
		ID: id, Method: paygate.MethodIntent, Status: paygate.StatusPending, Amount: 1999, Currency: "usd",
		ProductName: "Thing", Quantity: 1, Metadata: map[string]string{"orderId": "42"}, Refunds: []paygate.Refund{},
		CreatedAt: at, UpdatedAt: at,
	}
	for _, f := range mut {
		f(p)
	}
	return p
}

func TestInsertGetUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	p := newPayment("pay_a1", t0)
	if err := s.InsertPayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPayment(ctx, "pay_a1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Fatalf("GetPayment (-want +got):\n%s", diff)
	}

	later := t0.Add(time.Minute)
	updated, err := s.UpdatePayment(ctx, "pay_a1", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.PaymentIntentID = "pi_123"
		p.Status = paygate.StatusSucceeded
		p.Refunds = append(p.Refunds, paygate.Refund{ID: "rf_1", Amount: 500, Status: paygate.RefundPending, CreatedAt: later, UpdatedAt: later})
		p.AmountRefunded = 500
		p.UpdatedAt = later
		return []paygate.HistoryEntry{{PaymentID: p.ID, PaymentIntentID: "pi_123", EventType: paygate.HistoryRefundCreated,
			FromStatus: paygate.StatusSucceeded, ToStatus: paygate.StatusPartiallyRefunded, Amount: 500, Currency: "usd",
			Source: paygate.SourceAPI, Data: []byte(`{"refundId":"re_1"}`), CreatedAt: later}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byIntent, err := s.GetPaymentByStripeID(ctx, "pi_123")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(updated, byIntent); diff != "" {
		t.Fatalf("GetPaymentByStripeID (-want +got):\n%s", diff)
	}
	if len(byIntent.Refunds) != 1 || byIntent.Refunds[0].Amount != 500 {
		t.Fatalf("refunds = %+v", byIntent.Refunds)
	}
	hist, err := s.PaymentHistory(ctx, "pay_a1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].EventType != paygate.HistoryRefundCreated || string(hist[0].Data) != `{"refundId": "re_1"}` {
		t.Fatalf("history = %+v (data %s)", hist, hist[0].Data)
	}

	// A failing fn changes nothing.
	boom := errors.New("boom")
	if _, err := s.UpdatePayment(ctx, "pay_a1", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Status = paygate.StatusFailed
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	again, _ := s.GetPayment(ctx, "pay_a1")
	if again.Status != paygate.StatusSucceeded {
		t.Fatalf("status after failed update = %s", again.Status)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	if _, err := s.GetPayment(ctx, "pay_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("GetPayment err = %v", err)
	}
	if _, err := s.GetPaymentByStripeID(ctx, "pi_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("GetPaymentByStripeID err = %v", err)
	}
	if _, err := s.UpdatePayment(ctx, "pay_nope", func(*paygate.Payment) ([]paygate.HistoryEntry, error) { return nil, nil }); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("UpdatePayment err = %v", err)
	}
	if err := s.DeletePayment(ctx, "pay_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("DeletePayment err = %v", err)
	}
}

func TestDeleteOnlyUnattached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	_ = s.InsertPayment(ctx, newPayment("pay_fresh", t0))
	_ = s.InsertPayment(ctx, newPayment("pay_attached", t0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_x" }))
	if err := s.DeletePayment(ctx, "pay_fresh"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPayment(ctx, "pay_fresh"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("fresh payment still there: %v", err)
	}
	if err := s.DeletePayment(ctx, "pay_attached"); !errors.Is(err, paygate.ErrConflict) {
		t.Fatalf("DeletePayment(attached) = %v, want ErrConflict", err)
	}
	if _, err := s.GetPayment(ctx, "pay_attached"); err != nil {
		t.Fatalf("attached payment lost: %v", err)
	}
}

func TestListPaymentsFiltersAndPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	// 30 payments, one a minute; every third succeeded, every fifth a link with an email.
	for i := 0; i < 30; i++ {
		_ = s.InsertPayment(ctx, newPayment(fmt.Sprintf("pay_%02d", i), t0.Add(time.Duration(i)*time.Minute), func(p *paygate.Payment) {
			if i%3 == 0 {
				p.Status = paygate.StatusSucceeded
			}
			if i%5 == 0 {
				p.Method, p.CustomerEmail = paygate.MethodLink, "a@example.com"
			}
		}))
	}
	ids := func(pg *paygate.Page[paygate.Payment]) []string {
		var out []string
		for _, p := range pg.Items {
			out = append(out, p.ID)
		}
		return out
	}
	list := func(f paygate.PaymentFilter) *paygate.Page[paygate.Payment] {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 50
		}
		pg, err := s.ListPayments(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return pg
	}

	all := list(paygate.PaymentFilter{})
	if all.Total != 30 || len(all.Items) != 30 || all.Items[0].ID != "pay_29" || all.NextCursor != nil {
		t.Fatalf("all: total %d, items %v, cursor %v", all.Total, ids(all), all.NextCursor)
	}
	if got := list(paygate.PaymentFilter{Status: paygate.StatusSucceeded}); got.Total != 10 {
		t.Errorf("status filter total = %d, want 10", got.Total)
	}
	if got := list(paygate.PaymentFilter{Method: paygate.MethodLink, CustomerEmail: "a@example.com"}); got.Total != 6 {
		t.Errorf("method+email total = %d, want 6", got.Total)
	}
	rng := list(paygate.PaymentFilter{CreatedFrom: t0.Add(10 * time.Minute), CreatedTo: t0.Add(20 * time.Minute)})
	if diff := cmp.Diff([]string{"pay_19", "pay_18", "pay_17", "pay_16", "pay_15", "pay_14", "pay_13", "pay_12", "pay_11", "pay_10"}, ids(rng)); diff != "" {
		t.Errorf("created range (-want +got):\n%s", diff)
	}
	off := list(paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 5, Offset: 5}})
	if diff := cmp.Diff([]string{"pay_24", "pay_23", "pay_22", "pay_21", "pay_20"}, ids(off)); diff != "" {
		t.Errorf("offset page (-want +got):\n%s", diff)
	}

	// Cursor paging visits every payment once, in order, even when new
	// payments arrive between pages.
	var seen []string
	f := paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 7}}
	for pages := 0; ; pages++ {
		pg := list(f)
		seen = append(seen, ids(pg)...)
		if pages == 1 {
			_ = s.InsertPayment(ctx, newPayment("pay_new", t0.Add(time.Hour)))
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if len(seen) != 30 || seen[0] != "pay_29" || seen[29] != "pay_00" {
		t.Fatalf("cursor walk saw %d: %v", len(seen), seen)
	}

	if _, err := s.ListPayments(ctx, paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 5, Cursor: "!!!"}}); err == nil {
		t.Fatal("malformed cursor accepted")
	} else if e := paygate.AsError(err); e.Code != paygate.CodeInvalid || e.Param != "cursor" {
		t.Fatalf("malformed cursor: %+v", e)
	}
}

func TestListHistoryPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.NewPool(t))
	_ = s.InsertPayment(ctx, newPayment("pay_h", t0))
	for i := 0; i < 12; i++ {
		typ := paygate.HistoryStatusChanged
		if i%4 == 0 {
			typ = paygate.HistoryRefundCreated
		}
		_, err := s.UpdatePayment(ctx, "pay_h", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
			return []paygate.HistoryEntry{{PaymentID: p.ID, PaymentIntentID: "pi_h", EventType: typ, Amount: int64(i), Source: paygate.SourceAPI, CreatedAt: t0}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var amounts []int64
	f := paygate.HistoryFilter{PaymentIntentID: "pi_h", PageParams: paygate.PageParams{Limit: 5}}
	for {
		pg, err := s.ListHistory(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Total != 12 {
			t.Fatalf("total = %d", pg.Total)
		}
		for _, h := range pg.Items {
			amounts = append(amounts, h.Amount)
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if diff := cmp.Diff([]int64{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, amounts); diff != "" {
		t.Errorf("newest first (-want +got):\n%s", diff)
	}
	refunds, err := s.ListHistory(ctx, paygate.HistoryFilter{EventType: paygate.HistoryRefundCreated, PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || refunds.Total != 3 {
		t.Fatalf("eventType filter: %v, %+v", err, refunds)
	}
	full, _ := s.PaymentHistory(ctx, "pay_h")
	if len(full) != 12 || full[0].Amount != 0 {
		t.Fatalf("PaymentHistory oldest first: %d rows, first %+v", len(full), full[0])
	}
}

// Concurrent Migrate calls (several replicas starting at once) apply each
// migration once.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewPool(t) // already migrated once
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied, err := store.Migrate(ctx, pool)
			if err == nil && len(applied) != 0 {
				err = fmt.Errorf("re-applied %v", applied)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms, _ := store.Migrations()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM paygate_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("paygate_migrations rows = %d (%v), want %d", n, err, len(ms))
	}
}
