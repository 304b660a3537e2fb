package paygate

import (
	"context"
	"time"
)

// Store is the persistence the Gateway needs. The store package implements
// it on PostgreSQL, store/sqlite on an embedded SQLite file, and
// store/storetest is the conformance suite every implementation runs;
// paygate itself never opens a database.
//
// Every method returns an error wrapping ErrNotFound when the payment it is
// asked about does not exist.
type Store interface {
	// InsertPayment stores a new payment (status pending, no Stripe ids yet).
	// It returns an error wrapping ErrConflict when the id exists.
	InsertPayment(ctx context.Context, p *Payment) error
	// DeletePayment removes a payment that Stripe refused to create an
	// object for. It only removes a payment that has no Stripe ids and no
	// history, and returns ErrConflict otherwise.
	DeletePayment(ctx context.Context, id string) error
	// GetPayment returns the payment with its refunds.
	GetPayment(ctx context.Context, id string) (*Payment, error)
	// GetPaymentByStripeID returns the payment that a Stripe id names: any
	// of its [Payment.StripeIDs] (a PaymentIntent, charge, Checkout Session
	// or payment link id, of any attempt).
	GetPaymentByStripeID(ctx context.Context, stripeID string) (*Payment, error)
	// UpdatePayment locks the payment's row, loads it with its refunds,
	// attempts and disputes, calls fn, and if fn returns no error persists
	// the payment's fields and refunds (added or changed), indexes its new
	// Stripe ids, and inserts the history entries fn returned with their
	// callbacks, all in one transaction. It returns the payment as stored.
	// fn may run more than once if the transaction is retried, so it must
	// not do I/O. A Stripe id that already names another payment rolls
	// everything back with an error wrapping ErrStripeIDTaken.
	UpdatePayment(ctx context.Context, id string, fn func(p *Payment) ([]HistoryEntry, error)) (*Payment, error)
	// ListPayments returns one page of payments, newest first.
	ListPayments(ctx context.Context, f PaymentFilter) (*Page[Payment], error)
	// ListHistory returns one page of history entries, newest first.
	ListHistory(ctx context.Context, f HistoryFilter) (*Page[HistoryEntry], error)
	// PaymentHistory returns every history entry of a payment, oldest first.
	PaymentHistory(ctx context.Context, paymentID string) ([]HistoryEntry, error)
	// PaymentsToReconcile returns the ids of payments whose state Stripe may
	// know better: not final (pending, processing, failed) and created since
	// createdSince, or holding a refund reserved before refundsBefore that
	// Stripe never confirmed. At most limit, ordered by (created_at, id);
	// when after names a payment, only those ordered after it (keyset
	// paging; an after that no longer exists starts from the first).
	PaymentsToReconcile(ctx context.Context, createdSince, refundsBefore time.Time, after string, limit int) ([]string, error)
	// Ping makes a round trip to the database.
	Ping(ctx context.Context) error

	webhookStore
	stateStore
	callbackStore
	idempotencyStore
	systemLogStore
}

// stateStore is the part of Store for background work: a little durable
// state (reconciliation's cursors) and leases that let one replica at a
// time do a job. Both work on any database with a table of rows.
type stateStore interface {
	// GetState returns the value stored under key, or "" when there is none.
	GetState(ctx context.Context, key string) (string, error)
	// SetState stores value under key, replacing what was there.
	SetState(ctx context.Context, key, value string) error
	// TryLease takes the lease called name for holder until now+ttl, and
	// reports whether holder has it: it succeeds when no one holds it, when
	// the lease expired (at or before now) or when holder already holds it
	// (then the lease is extended); else it returns false and changes
	// nothing. Taking it is atomic: of concurrent callers, one wins.
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease ends holder's lease called name; it does nothing when
	// another holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// PageParams selects one page of a list: Limit items after Offset, or after
// the position Cursor names (from a previous page's NextCursor). Cursor wins
// over Offset when both are set.
//
// A Store reads a Limit of 0 or less as DefaultPageLimit, one over
// MaxPageLimit as MaxPageLimit and a negative Offset as 0 (see Normalized);
// the Gateway checks a request's paging first.
type PageParams struct {
	Limit  int
	Offset int
	Cursor string
	// EstimateTotal makes Total exact only up to ExactTotalLimit and an
	// estimate beyond it (Page.TotalEstimated), so that a page of a list of
	// millions costs the page, not a count of the millions. Default: exact.
	EstimateTotal bool
}

// Normalized returns p with a Limit of 0 or less read as DefaultPageLimit,
// one over MaxPageLimit as MaxPageLimit, and a negative Offset as 0, as a
// Store reads them.
func (p PageParams) Normalized() PageParams {
	if p.Limit <= 0 {
		p.Limit = DefaultPageLimit
	}
	p.Limit = min(p.Limit, MaxPageLimit)
	p.Offset = max(p.Offset, 0)
	return p
}

// Page is one page of a list, newest first.
type Page[T any] struct {
	Items []T `json:"items"`
	// Total is how many items match. With PageParams.EstimateTotal it is
	// exact up to ExactTotalLimit and above it the database's estimate (at
	// least ExactTotalLimit+1), and TotalEstimated is true.
	Total          int  `json:"total"`
	TotalEstimated bool `json:"totalEstimated,omitempty"`
	Limit          int  `json:"limit"`
	Offset         int  `json:"offset"`
	// NextCursor names the position after the last item; nil on the last page.
	NextCursor *string `json:"nextCursor"`
}

// ExactTotalLimit is how far a list's Total is counted exactly when the
// caller asked for an estimate (PageParams.EstimateTotal).
const ExactTotalLimit = 1_000

// PaymentFilter selects payments for ListPayments. Zero fields match all.
type PaymentFilter struct {
	Status        Status
	Method        Method
	CustomerEmail string
	CreatedFrom   time.Time // inclusive
	CreatedTo     time.Time // exclusive
	PageParams
}

// HistoryFilter selects history entries for ListHistory. Zero fields match all.
type HistoryFilter struct {
	PaymentID       string
	PaymentIntentID string
	EventType       HistoryType
	PageParams
}
