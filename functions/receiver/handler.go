//go:build !scf

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/receiver"
)

// ecrSource is the registry format of ECR events (see internal/registry).
const ecrSource = "ecr"

// handler translates the function's invocations to the receiver's Endpoint:
// Lambda Function URL and API Gateway HTTP API (payload format 2.0) requests,
// which share one JSON shape, and EventBridge events invoked directly by a
// rule (ECR image actions).
type handler struct {
	endpoint *receiver.Endpoint
	logger   *slog.Logger
	metrics  *emf.Writer
}

// invocation is just enough of an event to tell the two kinds apart.
type invocation struct {
	RequestContext *json.RawMessage `json:"requestContext"`
	DetailType     string           `json:"detail-type"`
	Detail         *json.RawMessage `json:"detail"`
}

// errRetry makes Lambda retry an asynchronous (EventBridge) invocation.
var errRetry = errors.New("the notification was not accepted; retry")

// invoke answers one invocation. An HTTP request always gets an HTTP
// answer (never a function error, which the Function URL would turn into a
// bare 502). An EventBridge event fails the invocation only when retrying
// can help (store or queue unavailable), so Lambda's asynchronous retries
// and the rule's dead-letter queue keep it.
func (h *handler) invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var inv invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		return nil, fmt.Errorf("invocation is not a JSON object: %w", err)
	}
	switch {
	case inv.RequestContext != nil:
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return response(receiver.ErrorResponse(http.StatusBadRequest, "bad request event", err.Error())), nil
		}
		return h.http(ctx, req), nil
	case inv.DetailType != "" && inv.Detail != nil:
		return nil, h.eventBridge(ctx, raw, inv.DetailType)
	}
	return nil, errors.New("unknown invocation: want a Function URL / API Gateway v2 request or an EventBridge event")
}

// http answers one Function URL / API Gateway request.
func (h *handler) http(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	in, bad := inbound(req)
	resp := bad
	if bad.Status == 0 {
		resp = h.endpoint.Handle(ctx, in)
	}
	h.observe(resp)
	return response(resp)
}

// eventBridge hands an EventBridge event to the receiver as an ECR
// notification. The invocation is authorised by IAM (only the rule may
// invoke the function), so no registry token is asked for.
func (h *handler) eventBridge(ctx context.Context, raw json.RawMessage, detailType string) error {
	resp := h.endpoint.Service.Receive(ctx, receiver.Request{ID: requestID(ctx), Body: raw, Source: ecrSource, Sender: "eventbridge"})
	h.observe(resp)
	switch {
	case resp.Status >= 500:
		return fmt.Errorf("%w (%d %s)", errRetry, resp.Status, resp.Body)
	case resp.Status >= 300:
		// Retrying the same event cannot help: log it and drop it.
		h.logger.LogAttrs(ctx, slog.LevelWarn, "eventbridge event refused", slog.String("detail_type", detailType),
			slog.Int("status", resp.Status), slog.String("answer", string(resp.Body)))
	}
	return nil
}

// observe emits the receiver's metrics for one answer, in one line:
// Notifications by Function and Status, and TasksEnqueued by Function when
// the answer made tasks.
func (h *handler) observe(resp receiver.Response) {
	sets := []emf.Set{{Dimensions: []string{"Function", "Status"}, Metrics: []emf.Metric{{Name: "Notifications", Unit: emf.Count, Value: 1}}}}
	if resp.Status == http.StatusAccepted {
		var a struct {
			Tasks int `json:"tasks"`
		}
		if json.Unmarshal(resp.Body, &a) == nil && a.Tasks > 0 {
			sets = append(sets, emf.Set{Dimensions: []string{"Function"}, Metrics: []emf.Metric{{Name: "TasksEnqueued", Unit: emf.Count, Value: float64(a.Tasks)}}})
		}
	}
	_ = h.metrics.EmitSets(map[string]string{"Function": "receiver", "Status": strconv.Itoa(resp.Status)}, sets...)
}

// response is the Lambda form of a receiver answer.
func response(resp receiver.Response) events.APIGatewayV2HTTPResponse {
	out := events.APIGatewayV2HTTPResponse{
		StatusCode: resp.Status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(resp.Body) + "\n",
	}
	for k, vs := range resp.Header {
		if len(vs) == 1 {
			out.Headers[k] = vs[0]
		} else if len(vs) > 1 {
			if out.MultiValueHeaders == nil {
				out.MultiValueHeaders = map[string][]string{}
			}
			out.MultiValueHeaders[k] = vs
		}
	}
	return out
}

// inbound builds the receiver's request; a non-zero Response means the
// event itself is unusable.
func inbound(req events.APIGatewayV2HTTPRequest) (receiver.Inbound, receiver.Response) {
	header := make(http.Header, len(req.Headers))
	for k, v := range req.Headers {
		// Lambda joins repeated headers with commas, as HTTP allows.
		header.Set(k, v)
	}
	query, err := url.ParseQuery(req.RawQueryString)
	if err != nil {
		return receiver.Inbound{}, receiver.ErrorResponse(http.StatusBadRequest, "bad query string", err.Error())
	}
	var body []byte
	tooLarge := len(req.Body) > base64.StdEncoding.EncodedLen(receiver.MaxBody)
	switch {
	case tooLarge:
		// Not decoded: the Endpoint answers 413.
	case req.IsBase64Encoded:
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return receiver.Inbound{}, receiver.ErrorResponse(http.StatusBadRequest, "bad base64 body", err.Error())
		}
	default:
		body = []byte(req.Body)
	}
	method := req.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodPost
	}
	path := req.RawPath
	if path == "" {
		path = "/"
	}
	return receiver.Inbound{
		ID: req.RequestContext.RequestID, Method: method, Path: path, Header: header, Query: query,
		Body: body, TooLarge: tooLarge || len(body) > receiver.MaxBody,
		// A cloud function's clients are never on its machine.
		Loopback: false,
		Remote:   req.RequestContext.HTTP.SourceIP,
	}, receiver.Response{}
}

// requestID is the invocation's id, for logs and answers.
func requestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}
