// Package apitest checks the HTTP API's responses against its OpenAPI
// document (paygate.OpenAPI), for the tests of every package that talks to
// the API over HTTP. It is imported by tests only.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/numedapp/paygate"
)

var (
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	errDoc error
)

// Doc returns paygate's OpenAPI document, loaded and validated (examples
// included) once.
func Doc() (*openapi3.T, error) {
	once.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		loader := openapi3.NewLoader()
		doc, errDoc = loader.LoadFromData(paygate.OpenAPI())
		if errDoc != nil {
			errDoc = fmt.Errorf("openapi.json: %w", errDoc)
			return
		}
		if errDoc = doc.Validate(context.Background()); errDoc != nil {
			errDoc = fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", errDoc)
			return
		}
		router, errDoc = gorillamux.NewRouter(doc)
	})
	return doc, errDoc
}

// CheckResponse validates one response the API gave to req (whose URL may
// be absolute, on any host) against the document: its status must be one
// the operation documents, and its headers and body must match that
// response's schema. A request that matches no route (a 404 or 405) must be
// answered with the documented error envelope. It returns nil when the
// response is as documented.
func CheckResponse(req *http.Request, status int, header http.Header, body []byte) error {
	if _, err := Doc(); err != nil {
		return err
	}
	// Route on the path alone: the document's server is "/".
	r := req.Clone(context.Background())
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.Host = ""
	route, params, err := router.FindRoute(r)
	if err != nil {
		var re *routers.RouteError
		if !errors.As(err, &re) {
			return err
		}
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s: no route in openapi.json, yet answered %d", req.Method, req.URL.Path, status)
		}
		return checkSchema("ErrorEnvelope", body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s -> %d does not match openapi.json: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// CheckRequest validates a request the API accepted (answered 2xx) against
// the document: its parameters and body (given apart, as sent) must be
// ones the document allows, or the document is stricter than the API.
func CheckRequest(req *http.Request, body []byte) error {
	if _, err := Doc(); err != nil {
		return err
	}
	r := req.Clone(context.Background())
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.Host = ""
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	route, params, err := router.FindRoute(r)
	if err != nil {
		return fmt.Errorf("%s %s: no route in openapi.json: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s was accepted, but openapi.json does not allow it: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// CheckSchema validates a JSON value against a schema of the document's
// components (by name, such as "CallbackPayload").
func CheckSchema(name string, body []byte) error {
	if _, err := Doc(); err != nil {
		return err
	}
	return checkSchema(name, body)
}

func checkSchema(name string, body []byte) error {
	ref, ok := doc.Components.Schemas[name]
	if !ok {
		return fmt.Errorf("openapi.json has no schema %s", name)
	}
	var v any
	if err := jsonDecode(body, &v); err != nil {
		return fmt.Errorf("%s: not JSON: %w", name, err)
	}
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("does not match openapi.json's %s: %w", name, err)
	}
	return nil
}
