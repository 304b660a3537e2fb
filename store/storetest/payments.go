package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

func testInsertGetUpdate(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	p := NewPayment("pay_a1", T0, func(p *paygate.Payment) { p.Description = "déjà vu ✓"; p.Livemode = true })
	mustInsert(t, s, p)
	got := mustGet(t, s, "pay_a1")
	if d := diff(p, got); d != "" {
		t.Fatalf("GetPayment: %s", d)
	}

	later := T0.Add(time.Minute)
	updated, err := s.UpdatePayment(ctx, "pay_a1", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.PaymentIntentID = "pi_123"
		p.ChargeID = "ch_123"
		p.Status = paygate.StatusSucceeded
		p.Attempts = []paygate.Attempt{{PaymentIntentID: "pi_123", Created: 1767323045,
			Charges: []paygate.ChargeState{{ID: "ch_123", Status: paygate.ChargeSucceeded}}}}
		p.Disputes = []paygate.Dispute{{ID: "dp_1", ChargeID: "ch_123", Amount: 100, Reason: "fraudulent", Status: "needs_response"}}
		p.Refunds = append(p.Refunds, paygate.Refund{ID: "rf_1", Amount: 500, Status: paygate.RefundPending, CreatedAt: later, UpdatedAt: later})
		p.AmountRefunded = 500
		p.StripeAmountRefunded, p.StripeRefundedAt = 500, later
		p.CallbackSeq = 3
		p.UpdatedAt = later
		return []paygate.HistoryEntry{{PaymentID: p.ID, PaymentIntentID: "pi_123", EventType: paygate.HistoryRefundCreated,
			FromStatus: paygate.StatusSucceeded, ToStatus: paygate.StatusPartiallyRefunded, Amount: 500, Currency: "usd",
			StripeEventID: "evt_1", Source: paygate.SourceAPI, Data: []byte(`{"refundId":"re_1"}`), CreatedAt: later}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// What UpdatePayment returns is what is stored, under every Stripe id.
	if d := diff(updated, mustGet(t, s, "pay_a1")); d != "" {
		t.Fatalf("GetPayment after update: %s", d)
	}
	for _, sid := range []string{"pi_123", "ch_123"} {
		byID, err := s.GetPaymentByStripeID(ctx, sid)
		if err != nil {
			t.Fatalf("GetPaymentByStripeID(%s): %v", sid, err)
		}
		if d := diff(updated, byID); d != "" {
			t.Fatalf("GetPaymentByStripeID(%s): %s", sid, d)
		}
	}
	if len(updated.Refunds) != 1 || updated.Refunds[0].Amount != 500 || !updated.Refunds[0].CreatedAt.Equal(later) {
		t.Fatalf("refunds = %+v", updated.Refunds)
	}
	hist, err := s.PaymentHistory(ctx, "pay_a1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].EventType != paygate.HistoryRefundCreated || hist[0].ID == "" || hist[0].StripeEventID != "evt_1" ||
		!hist[0].CreatedAt.Equal(later) || !jsonEqual(hist[0].Data, []byte(`{"refundId":"re_1"}`)) {
		t.Fatalf("history = %+v (data %s)", hist, hist[0].Data)
	}

	// A refund changes in place.
	_, err = s.UpdatePayment(ctx, "pay_a1", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Refunds[0].Status, p.Refunds[0].StripeRefundID, p.Refunds[0].UpdatedAt = paygate.RefundSucceeded, "re_1", later.Add(time.Second)
		p.Refunds[0].CreatedAt = later.Add(-time.Second) // Stripe's time replaces ours
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, "pay_a1").Refunds; len(r) != 1 || r[0].Status != paygate.RefundSucceeded || r[0].StripeRefundID != "re_1" ||
		!r[0].CreatedAt.Equal(later.Add(-time.Second)) || !r[0].UpdatedAt.Equal(later.Add(time.Second)) {
		t.Fatalf("refund after change = %+v", r)
	}

	// A failing fn changes nothing.
	if _, err := s.UpdatePayment(ctx, "pay_a1", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Status = paygate.StatusFailed
		p.Refunds = append(p.Refunds, paygate.Refund{ID: "rf_2", Amount: 1, Status: paygate.RefundPending, CreatedAt: later, UpdatedAt: later})
		return nil, errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want boom", err)
	}
	again := mustGet(t, s, "pay_a1")
	if again.Status != paygate.StatusSucceeded || len(again.Refunds) != 1 {
		t.Fatalf("after failed update: status %s, %d refunds", again.Status, len(again.Refunds))
	}
	if h, _ := s.PaymentHistory(ctx, "pay_a1"); len(h) != 1 {
		t.Fatalf("history after failed update: %d entries", len(h))
	}
}

func testNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.GetPayment(ctx, "pay_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("GetPayment err = %v", err)
	}
	for _, id := range []string{"pi_nope", ""} {
		if _, err := s.GetPaymentByStripeID(ctx, id); !errors.Is(err, paygate.ErrNotFound) {
			t.Errorf("GetPaymentByStripeID(%q) err = %v", id, err)
		}
	}
	called := false
	if _, err := s.UpdatePayment(ctx, "pay_nope", func(*paygate.Payment) ([]paygate.HistoryEntry, error) { called = true; return nil, nil }); !errors.Is(err, paygate.ErrNotFound) || called {
		t.Errorf("UpdatePayment err = %v, fn called %v", err, called)
	}
	if err := s.DeletePayment(ctx, "pay_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("DeletePayment err = %v", err)
	}
	if _, err := s.GetWebhookEvent(ctx, "evt_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("GetWebhookEvent err = %v", err)
	}
	if _, err := s.RetryCallback(ctx, "cb_nope", T0); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("RetryCallback err = %v", err)
	}
	if _, err := s.GetCallback(ctx, "cb_nope"); !errors.Is(err, paygate.ErrNotFound) {
		t.Errorf("GetCallback err = %v", err)
	}
	if h, err := s.PaymentHistory(ctx, "pay_nope"); err != nil || h == nil || len(h) != 0 {
		t.Errorf("PaymentHistory = %v, %v; want empty, non-nil", h, err)
	}
}

func testInsertConflict(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_c1", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_c1" }))
	if err := s.InsertPayment(ctx, NewPayment("pay_c1", T0)); !errors.Is(err, paygate.ErrConflict) {
		t.Fatalf("duplicate id: %v, want ErrConflict", err)
	}
	if err := s.InsertPayment(ctx, NewPayment("pay_c2", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_c1" })); !errors.Is(err, paygate.ErrStripeIDTaken) {
		t.Fatalf("Stripe id of another payment: %v, want ErrStripeIDTaken", err)
	}
	if _, err := s.GetPayment(ctx, "pay_c2"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("refused payment was stored: %v", err)
	}
}

func testDeleteOnlyUnattached(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_fresh", T0))
	mustInsert(t, s, NewPayment("pay_attached", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_x" }))
	mustInsert(t, s, NewPayment("pay_hist", T0))
	if _, err := s.UpdatePayment(ctx, "pay_hist", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		return []paygate.HistoryEntry{{PaymentID: p.ID, EventType: paygate.HistoryPaymentCreated, Source: paygate.SourceAPI, CreatedAt: T0}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePayment(ctx, "pay_fresh"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPayment(ctx, "pay_fresh"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("fresh payment still there: %v", err)
	}
	for _, id := range []string{"pay_attached", "pay_hist"} {
		if err := s.DeletePayment(ctx, id); !errors.Is(err, paygate.ErrConflict) {
			t.Fatalf("DeletePayment(%s) = %v, want ErrConflict", id, err)
		}
		mustGet(t, s, id)
	}
}

// Every Stripe id of a payment, of any attempt, finds it; one that names
// another payment rolls the whole update back.
func testStripeIDs(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_link", T0, func(p *paygate.Payment) { p.Method, p.PaymentLinkID = paygate.MethodLink, "plink_1" }))
	mustInsert(t, s, NewPayment("pay_other", T0, func(p *paygate.Payment) { p.PaymentIntentID = "pi_other" }))
	_, err := s.UpdatePayment(ctx, "pay_link", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Attempts = []paygate.Attempt{
			{CheckoutSessionID: "cs_1", PaymentIntentID: "pi_1"},
			{CheckoutSessionID: "cs_2", PaymentIntentID: "pi_2", Charges: []paygate.ChargeState{{ID: "ch_2", Status: paygate.ChargeSucceeded}}},
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"plink_1", "cs_1", "pi_1", "cs_2", "pi_2", "ch_2"} {
		p, err := s.GetPaymentByStripeID(ctx, sid)
		if err != nil || p.ID != "pay_link" {
			t.Fatalf("GetPaymentByStripeID(%s) = %v, %v", sid, p, err)
		}
	}
	_, err = s.UpdatePayment(ctx, "pay_link", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Status = paygate.StatusSucceeded
		p.Attempts = append(p.Attempts, paygate.Attempt{CheckoutSessionID: "cs_3", PaymentIntentID: "pi_other"})
		return []paygate.HistoryEntry{{PaymentID: p.ID, EventType: paygate.HistoryStatusChanged, Source: paygate.SourceAPI, CreatedAt: T0}}, nil
	})
	if !errors.Is(err, paygate.ErrStripeIDTaken) {
		t.Fatalf("taken id: %v, want ErrStripeIDTaken", err)
	}
	p := mustGet(t, s, "pay_link")
	if p.Status != paygate.StatusPending || len(p.Attempts) != 2 {
		t.Fatalf("rolled-back update left status %s, %d attempts", p.Status, len(p.Attempts))
	}
	if _, err := s.GetPaymentByStripeID(ctx, "cs_3"); !errors.Is(err, paygate.ErrNotFound) {
		t.Fatalf("rolled-back id indexed: %v", err)
	}
	if h, _ := s.PaymentHistory(ctx, "pay_link"); len(h) != 0 {
		t.Fatalf("rolled-back history stored: %+v", h)
	}
	if o, _ := s.GetPaymentByStripeID(ctx, "pi_other"); o == nil || o.ID != "pay_other" {
		t.Fatalf("pi_other now names %+v", o)
	}
}

func testListPayments(t *testing.T, s Store) {
	ctx := context.Background()
	// 30 payments, one a minute; every third succeeded, every fifth a link with an email.
	for i := 0; i < 30; i++ {
		mustInsert(t, s, NewPayment(fmt.Sprintf("pay_%02d", i), T0.Add(time.Duration(i)*time.Minute), func(p *paygate.Payment) {
			if i%3 == 0 {
				p.Status = paygate.StatusSucceeded
			}
			if i%5 == 0 {
				p.Method, p.CustomerEmail = paygate.MethodLink, "a@example.com"
			}
		}))
	}
	// Two payments in the same microsecond: the id breaks the tie.
	mustInsert(t, s, NewPayment("pay_tie_a", T0.Add(-time.Hour)))
	mustInsert(t, s, NewPayment("pay_tie_b", T0.Add(-time.Hour)))
	_, _ = s.UpdatePayment(ctx, "pay_05", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Refunds = append(p.Refunds, paygate.Refund{ID: "rf_05", Amount: 10, Status: paygate.RefundPending, CreatedAt: T0, UpdatedAt: T0})
		return nil, nil
	})
	ids := func(pg *paygate.Page[paygate.Payment]) []string {
		out := []string{}
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
	if all.Total != 32 || len(all.Items) != 32 || all.Items[0].ID != "pay_29" || all.NextCursor != nil || all.Limit != 50 {
		t.Fatalf("all: total %d, items %v, cursor %v", all.Total, ids(all), all.NextCursor)
	}
	if got := ids(all)[30:]; got[0] != "pay_tie_b" || got[1] != "pay_tie_a" {
		t.Fatalf("tie order: %v", got)
	}
	for _, p := range all.Items {
		if p.ID == "pay_05" && (len(p.Refunds) != 1 || p.Refunds[0].ID != "rf_05") {
			t.Fatalf("listed payment without its refunds: %+v", p.Refunds)
		}
		if p.Refunds == nil || p.Metadata["orderId"] != "42" {
			t.Fatalf("listed payment %s: refunds %v, metadata %v", p.ID, p.Refunds, p.Metadata)
		}
	}
	if got := list(paygate.PaymentFilter{Status: paygate.StatusSucceeded}); got.Total != 10 || len(got.Items) != 10 {
		t.Errorf("status filter total = %d, want 10", got.Total)
	}
	if got := list(paygate.PaymentFilter{Method: paygate.MethodLink, CustomerEmail: "a@example.com"}); got.Total != 6 {
		t.Errorf("method+email total = %d, want 6", got.Total)
	}
	if got := list(paygate.PaymentFilter{CustomerEmail: "nobody@example.com"}); got.Total != 0 || got.Items == nil || len(got.Items) != 0 {
		t.Errorf("no match: %+v", got)
	}
	rng := list(paygate.PaymentFilter{CreatedFrom: T0.Add(10 * time.Minute), CreatedTo: T0.Add(20 * time.Minute)})
	if d := diff([]string{"pay_19", "pay_18", "pay_17", "pay_16", "pay_15", "pay_14", "pay_13", "pay_12", "pay_11", "pay_10"}, ids(rng)); d != "" {
		t.Errorf("created range [from, to): %s", d)
	}
	off := list(paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 5, Offset: 5}})
	if d := diff([]string{"pay_24", "pay_23", "pay_22", "pay_21", "pay_20"}, ids(off)); d != "" || off.Offset != 5 || off.Total != 32 {
		t.Errorf("offset page: %s", d)
	}

	// Cursor paging visits every payment once, in order, even when new
	// payments arrive between pages.
	var seen []string
	f := paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 7}}
	for pages := 0; ; pages++ {
		pg := list(f)
		seen = append(seen, ids(pg)...)
		if pages == 1 {
			mustInsert(t, s, NewPayment("pay_new", T0.Add(time.Hour)))
		}
		if pg.NextCursor == nil {
			break
		}
		f.Cursor = *pg.NextCursor
	}
	if len(seen) != 32 || seen[0] != "pay_29" || seen[29] != "pay_00" || seen[31] != "pay_tie_a" {
		t.Fatalf("cursor walk saw %d: %v", len(seen), seen)
	}
	// A cursor with a filter, and one that wins over an offset.
	pg := list(paygate.PaymentFilter{Status: paygate.StatusSucceeded, PageParams: paygate.PageParams{Limit: 3}})
	next := list(paygate.PaymentFilter{Status: paygate.StatusSucceeded, PageParams: paygate.PageParams{Limit: 3, Offset: 100, Cursor: *pg.NextCursor}})
	if d := diff([]string{"pay_27", "pay_24", "pay_21", "pay_18", "pay_15", "pay_12"}, append(ids(pg), ids(next)...)); d != "" {
		t.Errorf("filtered cursor pages: %s", d)
	}

	for _, bad := range []string{"!!!", "aGVsbG8", "MjAyNnxwYXk"} {
		_, err := s.ListPayments(ctx, paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 5, Cursor: bad}})
		if e := paygate.AsError(err); err == nil || e.Code != paygate.CodeInvalid || e.Param != "cursor" {
			t.Fatalf("malformed cursor %q: %v", bad, err)
		}
	}
}

func testListHistory(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_h", T0))
	mustInsert(t, s, NewPayment("pay_h2", T0))
	for i := 0; i < 12; i++ {
		typ := paygate.HistoryStatusChanged
		if i%4 == 0 {
			typ = paygate.HistoryRefundCreated
		}
		_, err := s.UpdatePayment(ctx, "pay_h", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
			return []paygate.HistoryEntry{{PaymentID: p.ID, PaymentIntentID: "pi_h", EventType: typ, Amount: int64(i), Source: paygate.SourceAPI, CreatedAt: T0}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _ = s.UpdatePayment(ctx, "pay_h2", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		return []paygate.HistoryEntry{{PaymentID: p.ID, EventType: paygate.HistoryRefundCreated, Source: paygate.SourceAPI, CreatedAt: T0}}, nil
	})
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
	if d := diff([]int64{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, amounts); d != "" {
		t.Errorf("newest first: %s", d)
	}
	refunds, err := s.ListHistory(ctx, paygate.HistoryFilter{EventType: paygate.HistoryRefundCreated, PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || refunds.Total != 4 {
		t.Fatalf("eventType filter: %v, %+v", err, refunds)
	}
	byPayment, err := s.ListHistory(ctx, paygate.HistoryFilter{PaymentID: "pay_h2", PageParams: paygate.PageParams{Limit: 50}})
	if err != nil || byPayment.Total != 1 || byPayment.Items[0].PaymentID != "pay_h2" {
		t.Fatalf("paymentId filter: %v, %+v", err, byPayment)
	}
	full, _ := s.PaymentHistory(ctx, "pay_h")
	if len(full) != 12 || full[0].Amount != 0 || full[11].Amount != 11 {
		t.Fatalf("PaymentHistory oldest first: %d rows", len(full))
	}
	if _, err := s.ListHistory(ctx, paygate.HistoryFilter{PageParams: paygate.PageParams{Limit: 5, Cursor: "bm9wZQ"}}); paygate.AsError(err).Param != "cursor" {
		t.Fatalf("malformed history cursor: %v", err)
	}
}

// Ten concurrent refunds of one payment, each checking the refundable
// amount under UpdatePayment's lock, never refund more than was paid.
func testConcurrentRefunds(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_r", T0, func(p *paygate.Payment) { p.Status = paygate.StatusSucceeded; p.Amount = 1000 }))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	errNoBalance := errors.New("over-refund")
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdatePayment(ctx, "pay_r", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
				var reserved int64
				for _, r := range p.Refunds {
					reserved += r.Amount
				}
				if reserved != p.AmountRefunded {
					return nil, fmt.Errorf("refunds %d disagree with amountRefunded %d", reserved, p.AmountRefunded)
				}
				if p.AmountRefunded+300 > p.Amount {
					return nil, errNoBalance
				}
				p.AmountRefunded += 300
				p.Refunds = append(p.Refunds, paygate.Refund{ID: fmt.Sprintf("rf_%d", i), Amount: 300, Status: paygate.RefundPending, CreatedAt: T0, UpdatedAt: T0})
				return []paygate.HistoryEntry{{PaymentID: p.ID, EventType: paygate.HistoryRefundCreated, Amount: 300, Source: paygate.SourceAPI, CreatedAt: T0}}, nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, errNoBalance):
				refused++
			default:
				t.Errorf("refund %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	p := mustGet(t, s, "pay_r")
	hist, _ := s.PaymentHistory(ctx, "pay_r")
	if ok != 3 || refused != 7 || p.AmountRefunded != 900 || len(p.Refunds) != 3 || len(hist) != 3 {
		t.Fatalf("%d refunds, %d refused; amountRefunded %d, %d refund rows, %d history rows", ok, refused, p.AmountRefunded, len(p.Refunds), len(hist))
	}
}

// Stores keep microseconds, in UTC, and order by them.
func testTimestamps(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 6, 7, 8, 9, 987654000, time.FixedZone("X", 3600))
	mustInsert(t, s, NewPayment("pay_t1", at))
	mustInsert(t, s, NewPayment("pay_t2", at.Add(time.Microsecond)))
	p := mustGet(t, s, "pay_t1")
	if !p.CreatedAt.Equal(at) || p.CreatedAt.Location() != time.UTC {
		t.Fatalf("createdAt = %v, want %v in UTC", p.CreatedAt, at)
	}
	pg, err := s.ListPayments(ctx, paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 1}})
	if err != nil || pg.Items[0].ID != "pay_t2" {
		t.Fatalf("one microsecond later is newer: %v %v", pg, err)
	}
	next, err := s.ListPayments(ctx, paygate.PaymentFilter{PageParams: paygate.PageParams{Limit: 1, Cursor: *pg.NextCursor}})
	if err != nil || len(next.Items) != 1 || next.Items[0].ID != "pay_t1" {
		t.Fatalf("cursor across one microsecond: %v %v", next, err)
	}
	from, err := s.ListPayments(ctx, paygate.PaymentFilter{CreatedFrom: at.Add(time.Microsecond), PageParams: paygate.PageParams{Limit: 5}})
	if err != nil || from.Total != 1 {
		t.Fatalf("createdFrom at microsecond precision: %+v %v", from, err)
	}
}

func testPaymentsToReconcile(t *testing.T, s Store) {
	ctx := context.Background()
	mustInsert(t, s, NewPayment("pay_old", T0.Add(-48*time.Hour)))
	mustInsert(t, s, NewPayment("pay_pending", T0.Add(time.Minute)))
	mustInsert(t, s, NewPayment("pay_proc", T0.Add(2*time.Minute), func(p *paygate.Payment) { p.Status = paygate.StatusProcessing }))
	mustInsert(t, s, NewPayment("pay_done", T0.Add(3*time.Minute), func(p *paygate.Payment) { p.Status = paygate.StatusSucceeded }))
	mustInsert(t, s, NewPayment("pay_refund", T0.Add(-72*time.Hour), func(p *paygate.Payment) { p.Status = paygate.StatusSucceeded }))
	_, err := s.UpdatePayment(ctx, "pay_refund", func(p *paygate.Payment) ([]paygate.HistoryEntry, error) {
		p.Refunds = append(p.Refunds, paygate.Refund{ID: "rf_unconfirmed", Amount: 10, Status: paygate.RefundPending, CreatedAt: T0, UpdatedAt: T0})
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.PaymentsToReconcile(ctx, T0.Add(-time.Hour), T0.Add(time.Minute), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff([]string{"pay_refund", "pay_pending", "pay_proc"}, ids); d != "" {
		t.Fatalf("due: %s", d)
	}
	if ids, _ := s.PaymentsToReconcile(ctx, T0.Add(-time.Hour), T0, "", 10); len(ids) != 2 {
		t.Fatalf("a refund reserved at refundsBefore is not due yet: %v", ids)
	}
	if ids, _ := s.PaymentsToReconcile(ctx, T0.Add(-time.Hour), T0.Add(time.Minute), "", 1); len(ids) != 1 || ids[0] != "pay_refund" {
		t.Fatalf("limit, oldest first: %v", ids)
	}
}

// testListDefaultPaging: a list asked for with no limit, or a negative one
// and a negative offset, or the largest int as its limit, reads them as
// DefaultPageLimit (MaxPageLimit for the largest) and 0 (as PageParams
// says), for every list: a page, not a panic or an error.
func testListDefaultPaging(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range 3 {
		mustInsert(t, s, NewPayment(fmt.Sprintf("pay_dp%d", i), T0.Add(time.Duration(i)*time.Minute)))
	}
	for _, pp := range []paygate.PageParams{{}, {Limit: -5, Offset: -3}, {EstimateTotal: true}, {Limit: math.MaxInt}} {
		want := paygate.DefaultPageLimit
		if pp.Limit > 0 {
			want = paygate.MaxPageLimit
		}
		check := func(list string, limit, offset int, err error) {
			t.Helper()
			if err != nil || limit != want || offset != 0 {
				t.Errorf("%s with %+v: limit %d, offset %d, error %v; want limit %d, offset 0", list, pp, limit, offset, err, want)
			}
		}
		p, err := s.ListPayments(ctx, paygate.PaymentFilter{PageParams: pp})
		if err == nil && len(p.Items) != 3 {
			t.Errorf("payments with %+v: %d items, want 3", pp, len(p.Items))
		}
		check("payments", p.Limit, p.Offset, err)
		h, err := s.ListHistory(ctx, paygate.HistoryFilter{PageParams: pp})
		check("history", h.Limit, h.Offset, err)
		e, err := s.ListWebhookEvents(ctx, paygate.WebhookEventFilter{PageParams: pp})
		check("webhook events", e.Limit, e.Offset, err)
		c, err := s.ListCallbackAttempts(ctx, paygate.CallbackFilter{PageParams: pp})
		check("callback attempts", c.Limit, c.Offset, err)
		l, err := s.ListSystemLogs(ctx, paygate.SystemLogFilter{PageParams: pp})
		check("system logs", l.Limit, l.Offset, err)
	}
}
