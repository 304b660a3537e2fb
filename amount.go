package paygate

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// Currency describes how Stripe represents amounts of one currency.
//
// Amounts inside paygate are always integers in Stripe's minor units
// (cents for USD, yen for JPY, fils for KWD). Decimal amounts in major units
// exist only at the edge: in JSON requests, parsed exactly by [Currency.ParseAmount],
// and in text rendered by [Currency.FormatAmount].
type Currency struct {
	// Code is the lowercase ISO 4217 code Stripe uses ("usd").
	Code string
	// Exponent is the number of minor-unit digits Stripe's API uses:
	// 0 for zero-decimal currencies (JPY), 3 for BHD, JOD, KWD, OMR and TND,
	// 2 otherwise. ISK keeps 2 here, as Stripe does, although it only accepts
	// whole krónur (see Step).
	Exponent int
	// Step is the granularity Stripe accepts, in minor units: 10 for the
	// three-decimal currencies (the last digit must be 0), 100 for ISK, else 1.
	Step int64
	// Max is the largest amount Stripe accepts, in minor units: eight digits
	// (99999999) for most currencies, twelve for IDR.
	Max int64
}

// maxDigits8 is Stripe's documented maximum for an amount: eight digits.
const maxDigits8 = 99_999_999

// currencies lists Stripe's presentment currencies with their exponents and
// special cases, from https://docs.stripe.com/currencies (zero-decimal,
// three-decimal and "special cases" sections).
var currencies = func() map[string]Currency {
	twoDecimal := strings.Fields(`aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bmd bnd
		bob brl bsd bwp byn bzd cad cdf chf cny cop crc cve czk dkk dop dzd egp etb eur fjd fkp
		gbp gel ghs gip gmd gtq gyd hkd hnl htg huf idr ils inr jmd kes kgs khr kyd kzt lak lbp
		lkr lrd lsl mad mdl mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab
		pen pgk php pkr pln qar ron rsd rub sar sbd scr sek sgd shp sle sll sos srd std szl thb
		tjs top try ttd twd tzs uah usd uyu uzs wst xcd yer zar zmw`)
	zeroDecimal := strings.Fields(`bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf`)
	threeDecimal := strings.Fields(`bhd jod kwd omr tnd`)

	m := make(map[string]Currency, len(twoDecimal)+len(zeroDecimal)+len(threeDecimal)+1)
	for _, c := range twoDecimal {
		m[c] = Currency{Code: c, Exponent: 2, Step: 1, Max: maxDigits8}
	}
	for _, c := range zeroDecimal {
		m[c] = Currency{Code: c, Exponent: 0, Step: 1, Max: maxDigits8}
	}
	for _, c := range threeDecimal {
		m[c] = Currency{Code: c, Exponent: 3, Step: 10, Max: maxDigits8}
	}
	// ISK is two-decimal in Stripe's API but only whole krónur are accepted:
	// amounts must be divisible by 100.
	m["isk"] = Currency{Code: "isk", Exponent: 2, Step: 100, Max: maxDigits8}
	// IDR amounts may have up to twelve digits.
	idr := m["idr"]
	idr.Max = 999_999_999_999
	m["idr"] = idr
	return m
}()

// LookupCurrency returns Stripe's rules for the currency code (any case).
// It returns a *Error naming param "currency" when Stripe does not support it.
func LookupCurrency(code string) (Currency, error) {
	c, ok := currencies[strings.ToLower(code)]
	if !ok {
		return Currency{}, invalidParam("currency", "currency %q is not a currency Stripe supports", truncate(code, 16))
	}
	return c, nil
}

// maxAmountTextLen bounds the text of a decimal amount; no valid amount
// needs more, and it keeps the parser's work constant.
const maxAmountTextLen = 64

// ParseAmount converts a decimal amount in major units ("19.99", "1e2",
// "19.990") into minor units, exactly: the text is parsed as a decimal, never
// through float64. It accepts the JSON number grammar only.
//
// It returns a *Error naming param "amount" when the text is not a number,
// is zero or negative, has more precision than the currency (or than its
// Step) allows, or exceeds the currency's Max.
func (c Currency) ParseAmount(text string) (int64, error) {
	if text == "" {
		return 0, invalidParam("amount", "amount is required")
	}
	if len(text) > maxAmountTextLen {
		return 0, invalidParam("amount", "amount is too long to be a valid amount")
	}
	neg, mant, exp, ok := parseDecimal(text)
	if !ok {
		return 0, invalidParam("amount", "amount must be a decimal number such as 19.99")
	}
	mant = strings.TrimLeft(mant, "0")
	if mant == "" {
		return 0, invalidParam("amount", "amount must be greater than zero")
	}
	if neg {
		return 0, invalidParam("amount", "amount must be greater than zero")
	}
	// value = mant × 10^(exp + Exponent) minor units.
	e := exp + c.Exponent
	for strings.HasSuffix(mant, "0") {
		mant = mant[:len(mant)-1]
		e++
	}
	if e < 0 {
		return 0, invalidParam("amount", "amount has more decimal places than %s allows (%d)", strings.ToUpper(c.Code), c.Exponent)
	}
	if len(mant)+e > 18 {
		return 0, invalidParam("amount", "amount exceeds the maximum of %s %s", c.FormatAmount(c.Max), strings.ToUpper(c.Code))
	}
	v, err := strconv.ParseInt(mant, 10, 64)
	if err != nil {
		return 0, invalidParam("amount", "amount must be a decimal number such as 19.99")
	}
	for ; e > 0; e-- {
		v *= 10
	}
	if v > c.Max {
		return 0, invalidParam("amount", "amount exceeds the maximum of %s %s", c.FormatAmount(c.Max), strings.ToUpper(c.Code))
	}
	if v%c.Step != 0 {
		return 0, invalidParam("amount", "%s amounts must be multiples of %s", strings.ToUpper(c.Code), c.FormatAmount(c.Step))
	}
	return v, nil
}

// FormatAmount renders minor units as an exact decimal in major units with
// exactly Exponent fraction digits: 1999 USD is "19.99", 500 JPY is "500".
func (c Currency) FormatAmount(minor int64) string {
	s := strconv.FormatInt(minor, 10)
	sign := ""
	if minor < 0 {
		sign, s = "-", s[1:]
	}
	if c.Exponent == 0 {
		return sign + s
	}
	if len(s) <= c.Exponent {
		s = strings.Repeat("0", c.Exponent-len(s)+1) + s
	}
	return sign + s[:len(s)-c.Exponent] + "." + s[len(s)-c.Exponent:]
}

// parseDecimal splits text in the JSON number grammar into sign, the digits
// of the mantissa (integer and fraction digits together) and the power of ten
// they are scaled by. ok is false for anything else, including exponents too
// large to describe a valid amount.
func parseDecimal(s string) (neg bool, mant string, exp int, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') {
		return false, "", 0, false
	}
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
		if frac == "" {
			return false, "", 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		esign := 1
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			if s[i] == '-' {
				esign = -1
			}
			i++
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		digits := strings.TrimLeft(s[es:i], "0")
		if es == i || len(digits) > 3 { // |exponent| < 1000 keeps the arithmetic small
			return false, "", 0, false
		}
		if digits != "" {
			n, _ := strconv.Atoi(digits)
			exp = esign * n
		}
	}
	if i != len(s) {
		return false, "", 0, false
	}
	return neg, intPart + frac, exp - len(frac), true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// Decimal is a decimal amount in major units as it appears in a JSON request:
// a JSON number (19.99) or a string holding one ("19.99"). It keeps the exact
// text; [Currency.ParseAmount] turns it into minor units. The zero value means
// "not given": in JSON, only a field left out is not given.
type Decimal string

// UnmarshalJSON keeps the number's text exactly as written. It refuses
// JSON values that are neither numbers nor strings, null and the empty
// string: those are not amounts, and must not read as a field left out (a
// refund without an amount refunds everything that remains).
func (d *Decimal) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0 || string(b) == "null":
		return &json.UnmarshalTypeError{Value: "null", Type: decimalType}
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return &json.UnmarshalTypeError{Value: "an empty string", Type: decimalType}
		}
		*d = Decimal(s)
		return nil
	case b[0] == '-' || isDigit(b[0]):
		*d = Decimal(b)
		return nil
	default:
		return &json.UnmarshalTypeError{Value: jsonKind(b[0]), Type: decimalType}
	}
}

func jsonKind(b byte) string {
	switch b {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	default:
		return "value"
	}
}

// truncate shortens s to n bytes for use in messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var decimalType = reflect.TypeOf(Decimal(""))
