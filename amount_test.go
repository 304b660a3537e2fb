package paygate

import (
	"math/big"
	"strings"
	"testing"
)

func TestParseAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		currency, text string
		want           int64
		wantErr        string // substring of the message; "" means success
	}{
		{"usd", "19.99", 1999, ""},
		{"usd", "19.990", 1999, ""},
		{"usd", "1e2", 10000, ""},
		{"usd", "1E+2", 10000, ""},
		{"usd", "1999e-2", 1999, ""},
		{"usd", "0.01", 1, ""},
		{"usd", "500", 50000, ""},
		{"usd", "999999.99", 99999999, ""},
		{"USD", "0.5", 50, ""},
		{"jpy", "500", 500, ""},
		{"jpy", "5e2", 500, ""},
		{"jpy", "500.0", 500, ""},
		{"krw", "1000", 1000, ""},
		{"vnd", "99999999", 99999999, ""},
		{"kwd", "1.230", 1230, ""},
		{"kwd", "1.23", 1230, ""},
		{"bhd", "0.01", 10, ""},
		{"thb", "100.25", 10025, ""},
		{"isk", "5", 500, ""},
		{"idr", "9999999999.99", 999999999999, ""},
		{"huf", "10.45", 1045, ""},

		{"usd", "19.999", 0, "more decimal places than USD allows (2)"},
		{"usd", "0.001", 0, "more decimal places"},
		{"usd", "1e-3", 0, "more decimal places"},
		{"jpy", "10.5", 0, "more decimal places than JPY allows (0)"},
		{"jpy", "1e-1", 0, "more decimal places"},
		{"kwd", "1.234", 0, "multiples of 0.010"},
		{"isk", "5.50", 0, "multiples of 1.00"},
		{"usd", "0", 0, "greater than zero"},
		{"usd", "0.00", 0, "greater than zero"},
		{"usd", "-0", 0, "greater than zero"},
		{"usd", "-5", 0, "greater than zero"},
		{"usd", "1000000", 0, "exceeds the maximum of 999999.99 USD"},
		{"jpy", "100000000", 0, "exceeds the maximum"},
		{"usd", "1e400", 0, "exceeds the maximum"},
		{"usd", "1e1000", 0, "decimal number"},
		{"usd", "1e30", 0, "exceeds the maximum"},
		{"usd", "1e-999", 0, "more decimal places"},
		{"usd", "100000000000000000000000000000", 0, "exceeds the maximum"},
		{"usd", "NaN", 0, "decimal number"},
		{"usd", "Infinity", 0, "decimal number"},
		{"usd", "-Infinity", 0, "decimal number"},
		{"usd", "0x10", 0, "decimal number"},
		{"usd", "1_000", 0, "decimal number"},
		{"usd", "+5", 0, "decimal number"},
		{"usd", " 5", 0, "decimal number"},
		{"usd", "5 ", 0, "decimal number"},
		{"usd", "05", 0, "decimal number"},
		{"usd", ".5", 0, "decimal number"},
		{"usd", "5.", 0, "decimal number"},
		{"usd", "1e", 0, "decimal number"},
		{"usd", "1,5", 0, "decimal number"},
		{"usd", "", 0, "required"},
		{"usd", strings.Repeat("1", 65), 0, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.currency+"/"+tt.text, func(t *testing.T) {
			c, err := LookupCurrency(tt.currency)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ParseAmount(tt.text)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseAmount(%q) = %d, %v; want %d", tt.text, got, err, tt.want)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Param != "amount" || e.Code != CodeInvalid || !strings.Contains(e.Message, tt.wantErr) {
				t.Fatalf("ParseAmount(%q) = %d, %v; want invalid amount error containing %q", tt.text, got, err, tt.wantErr)
			}
		})
	}
}

func TestLookupCurrency(t *testing.T) {
	t.Parallel()
	for code, exp := range map[string]int{"usd": 2, "EUR": 2, "jpy": 0, "ugx": 0, "xof": 0, "kwd": 3, "tnd": 3, "thb": 2, "isk": 2} {
		c, err := LookupCurrency(code)
		if err != nil || c.Exponent != exp {
			t.Errorf("LookupCurrency(%s) = %+v, %v; want exponent %d", code, c, err, exp)
		}
	}
	for _, bad := range []string{"", "xyz", "us", "usdd", "btc"} {
		if _, err := LookupCurrency(bad); err == nil || err.(*Error).Param != "currency" {
			t.Errorf("LookupCurrency(%q) = %v; want a currency error", bad, err)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cur   string
		minor int64
		want  string
	}{
		{"usd", 1999, "19.99"}, {"usd", 5, "0.05"}, {"usd", 0, "0.00"}, {"usd", -150, "-1.50"},
		{"jpy", 500, "500"}, {"kwd", 1230, "1.230"}, {"kwd", 10, "0.010"},
	} {
		c, _ := LookupCurrency(tt.cur)
		if got := c.FormatAmount(tt.minor); got != tt.want {
			t.Errorf("%s FormatAmount(%d) = %q, want %q", tt.cur, tt.minor, got, tt.want)
		}
	}
}

// FuzzParseAmount checks, for any text and currency: ParseAmount never
// panics; what it accepts is exactly the decimal's value in minor units
// (checked with math/big), positive, within Max, a multiple of Step; and
// FormatAmount of the result parses back to the same value.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"19.99", "1e2", "0.001", "-1", "1e-2", "999999.99", "1.230", "NaN", "1e999", "0.10e1"} {
		f.Add(s, "usd")
		f.Add(s, "jpy")
		f.Add(s, "kwd")
		f.Add(s, "isk")
	}
	f.Fuzz(func(t *testing.T, text, code string) {
		c, err := LookupCurrency(code)
		if err != nil {
			return
		}
		got, err := c.ParseAmount(text)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Param != "amount" {
				t.Fatalf("ParseAmount(%q) error %v does not name amount", text, err)
			}
			return
		}
		if got <= 0 || got > c.Max || got%c.Step != 0 {
			t.Fatalf("ParseAmount(%q, %s) = %d: outside (0, %d] or not a multiple of %d", text, code, got, c.Max, c.Step)
		}
		r, ok := new(big.Rat).SetString(text)
		if !ok {
			t.Fatalf("ParseAmount accepted %q, which is not a decimal", text)
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.Exponent)), nil)))
		if !r.IsInt() || r.Num().Int64() != got {
			t.Fatalf("ParseAmount(%q, %s) = %d, exact value is %s", text, code, got, r.RatString())
		}
		back, err := c.ParseAmount(c.FormatAmount(got))
		if err != nil || back != got {
			t.Fatalf("round trip of %d via %q = %d, %v", got, c.FormatAmount(got), back, err)
		}
	})
}
