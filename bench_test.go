package paygate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numedapp/paygate"
)

// BenchmarkWebhookIngest measures HandleWebhook end to end against a real
// PostgreSQL: verify the signature, parse, store the event once, lock and
// update the payment, write history, commit. Each iteration is a new event
// that changes its payment (alternately succeeded and refunded).
func BenchmarkWebhookIngest(b *testing.B) {
	for _, parallel := range []int{1, 8} {
		b.Run(fmt.Sprintf("senders=%d", parallel), func(b *testing.B) {
			e := newEnv(b, withWebhookSecrets(whsecNew))
			const n = 512
			pays := make([]*paygate.Payment, n)
			for i := range pays {
				pays[i] = e.webhookPayment(paygate.MethodIntent, 1000)
			}
			payloads := make([][]byte, b.N)
			sigs := make([]string, b.N)
			now := time.Now()
			for i := range payloads {
				p := pays[i%n]
				if (i/n)%2 == 0 {
					payloads[i] = stripeEventJSON(fmt.Sprintf("evt_bench%d_%d", parallel, i), "payment_intent.succeeded", "2023-10-16", piObject(p.PaymentIntentID, "succeeded", 1000, p.ID, "ch_b"))
				} else {
					payloads[i] = stripeEventJSON(fmt.Sprintf("evt_bench%d_%d", parallel, i), "charge.refunded", "2023-10-16", chargeObject("ch_b", p.PaymentIntentID, 1000, int64(100+i%800), p.ID))
				}
				sigs[i] = signed(payloads[i], whsecNew, now)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < parallel; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						if _, err := e.gw.HandleWebhook(ctx, payloads[i], sigs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
