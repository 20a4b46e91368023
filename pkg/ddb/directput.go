package ddb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"weak"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// directPut sends the first attempt of a PutItem or an UpdateItem as one signed HTTP request
// of its own making, around the SDK. The SDK's path (its per-call middleware stack,
// serializer, endpoint and auth resolution, retry bookkeeping, signing, decoder) cost about
// 150 µs of CPU and 250 allocations per call, as much as the rest of an ingest; ingest makes
// one PutItem per event, and a drained event costs the inbox two UpdateItems (lease, ack).
// A plain success is answered here, and for an update a condition that did not hold (a lease
// race, a stale ack: answers, not failures): any other answer or failure goes on to the SDK's
// path, which sends the call again as a retry and turns the answer into its typed errors, so
// callers see what they always saw. Writes here are conditional or idempotent by design, so
// the extra attempt is one more retry, no more. After throttling or a server error it first waits the
// retryer's delay, as the SDK would before a retry; after a refused signature (a clock
// DynamoDB finds skewed, credentials it does not know) it steps aside for a minute, since the
// SDK's path corrects what it can and this one cannot.
//
// The call keeps what the client's stack gives every other call, for both paths at once: its
// call slot, the client span otelaws would make (same name, scope and attributes), the
// duration on trigger.dynamodb.call.duration and the consumed capacity. It belongs to the
// client NewClient built (see PutItem); a client derived from its options is not direct.
type directPut struct {
	http     dynamodb.HTTPClient
	resolver dynamodb.EndpointResolverV2
	// params are the client's endpoint parameters; a call adds its account and table.
	params  dynamodb.EndpointParameters
	mode    aws.AccountIDEndpointMode
	region  string
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	sign    directSigner
	retryer aws.Retryer
	// sdk is the SDK's path: the client's settings without its telemetry or call slots.
	sdk *dynamodb.Client
	// metrics and tracer are the client's telemetry; nil without it.
	metrics *callMetrics
	tracer  trace.Tracer

	mu        sync.RWMutex
	endpoints map[endpointKey]endpointURL
	// offUntil (unix nanoseconds) keeps every call on the SDK's path after a refused signature.
	offUntil atomic.Int64
}

type endpointKey struct{ account, table string }

// endpointURL is an endpoint and whether the direct signer can sign requests to it.
type endpointURL struct {
	url      string
	signable bool
}

// directOp is an operation the direct path sends: its name and its X-Amz-Target, one value
// shared by every request.
type directOp struct {
	name   string
	target []string
}

var (
	opPutItem    = directOp{"PutItem", []string{"DynamoDB_20120810.PutItem"}}
	opUpdateItem = directOp{"UpdateItem", []string{"DynamoDB_20120810.UpdateItem"}}
)

const (
	directContentType = "application/x-amz-json-1.0"
	// directOff is how long a refused signature keeps calls on the SDK's path.
	directOff = time.Minute
)

// directs maps the clients NewClient built to their direct path. Weak keys: a client that is
// no longer used takes its entry with it.
var directs sync.Map // weak.Pointer[dynamodb.Client] → *directPut

// init takes what it needs from the finished client's options and registers it for client.
// Settings it does not follow (a legacy endpoint resolver, plain HTTP to AWS) or an endpoint it
// cannot resolve leave every call to the SDK's path.
func (d *directPut) init(ctx context.Context, client, sdk *dynamodb.Client) {
	o := client.Options()
	if o.Region == "" || o.Credentials == nil || o.HTTPClient == nil || o.EndpointResolverV2 == nil ||
		o.Retryer == nil || o.EndpointResolver != nil || o.EndpointOptions.DisableHTTPS {
		return
	}
	d.resolver = o.EndpointResolverV2
	d.params = dynamodb.EndpointParameters{
		Region:                aws.String(o.Region),
		Endpoint:              o.BaseEndpoint,
		UseFIPS:               aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:          aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		AccountIdEndpointMode: aws.String(string(o.AccountIDEndpointMode)),
	}
	d.mode = o.AccountIDEndpointMode
	d.endpoints = map[endpointKey]endpointURL{}
	if _, err := d.endpoint(ctx, "", ""); err != nil {
		return
	}
	d.http = o.HTTPClient
	// The body here is a byte slice net/http sends with the headers already.
	if ow, ok := d.http.(oneWrite); ok {
		d.http = ow.next
	}
	d.region = o.Region
	d.creds = o.Credentials
	d.signer = v4.NewSigner()
	d.sign.region = o.Region
	d.retryer = o.Retryer
	d.sdk = sdk
	key := weak.Make(client)
	directs.Store(key, d)
	runtime.AddCleanup(client, func(k weak.Pointer[dynamodb.Client]) { directs.Delete(k) }, key)
}

// endpoint is where the SDK would send a PutItem of table with credentials of account: with
// IAM credentials that name their account, DynamoDB's endpoint is the account's own.
func (d *directPut) endpoint(ctx context.Context, account, table string) (endpointURL, error) {
	if d.mode == aws.AccountIDEndpointModeDisabled {
		account = ""
	}
	k := endpointKey{account, table}
	d.mu.RLock()
	at, ok := d.endpoints[k]
	d.mu.RUnlock()
	if ok {
		return at, nil
	}
	p := d.params
	if account != "" {
		p.AccountId = aws.String(account)
	}
	if table != "" {
		p.ResourceArn = aws.String(table)
	}
	ep, err := d.resolver.ResolveEndpoint(ctx, p.WithDefaults())
	if err != nil {
		return endpointURL{}, err
	}
	at = endpointURL{url: ep.URI.String()}
	at.signable = canSign(at.url)
	d.mu.Lock()
	// A few tables and one account: the map stays small.
	d.endpoints[k] = at
	d.mu.Unlock()
	return at, nil
}

// directCall is what the direct path knows of one operation's input and output.
type directCall[I, O any] struct {
	op directOp
	// complete is false for an input the SDK's validation refuses without a request.
	complete func(*I) bool
	table    func(*I) *string
	asked    func(*I) *rcc // the input's ReturnConsumedCapacity
	encode   func(*I) ([]byte, bool)
	// output is a success's answer as the SDK gives it; failed, when set, answers a refusal
	// (a condition that did not hold) itself rather than leave it to the SDK's path.
	output   func(attributes map[string]types.AttributeValue, consumed *types.ConsumedCapacity) *O
	failed   func(answer *answerError, raw []byte) error
	sdk      func(*dynamodb.Client, context.Context, *I, ...func(*dynamodb.Options)) (*O, error)
	metadata func(*O) middleware.Metadata
	consumed func(*O) *types.ConsumedCapacity
}

var putCall = directCall[dynamodb.PutItemInput, dynamodb.PutItemOutput]{
	op:       opPutItem,
	complete: func(in *dynamodb.PutItemInput) bool { return in.Item != nil },
	table:    func(in *dynamodb.PutItemInput) *string { return in.TableName },
	asked:    func(in *dynamodb.PutItemInput) *rcc { return &in.ReturnConsumedCapacity },
	encode:   encodePut,
	// encodePut asks for no attributes back.
	output: func(_ map[string]types.AttributeValue, cc *types.ConsumedCapacity) *dynamodb.PutItemOutput {
		return &dynamodb.PutItemOutput{ConsumedCapacity: cc}
	},
	sdk:      (*dynamodb.Client).PutItem,
	metadata: func(out *dynamodb.PutItemOutput) middleware.Metadata { return out.ResultMetadata },
	consumed: func(out *dynamodb.PutItemOutput) *types.ConsumedCapacity { return out.ConsumedCapacity },
}

var updateCall = directCall[dynamodb.UpdateItemInput, dynamodb.UpdateItemOutput]{
	op:       opUpdateItem,
	complete: func(in *dynamodb.UpdateItemInput) bool { return in.Key != nil },
	table:    func(in *dynamodb.UpdateItemInput) *string { return in.TableName },
	asked:    func(in *dynamodb.UpdateItemInput) *rcc { return &in.ReturnConsumedCapacity },
	encode:   encodeUpdate,
	output: func(attrs map[string]types.AttributeValue, cc *types.ConsumedCapacity) *dynamodb.UpdateItemOutput {
		return &dynamodb.UpdateItemOutput{Attributes: attrs, ConsumedCapacity: cc}
	},
	// Leases and acks race by design: a condition that did not hold is an answer, not a
	// failure, and sending it again on the SDK's path would only double the call.
	failed:   conditionFailed,
	sdk:      (*dynamodb.Client).UpdateItem,
	metadata: func(out *dynamodb.UpdateItemOutput) middleware.Metadata { return out.ResultMetadata },
	consumed: func(out *dynamodb.UpdateItemOutput) *types.ConsumedCapacity { return out.ConsumedCapacity },
}

// PutItem is client.PutItem, sent directly when client is one NewClient built. Call options
// (a per-call region, say) are the SDK's to apply: a call given any goes the SDK's way.
func PutItem(ctx context.Context, client *dynamodb.Client, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return direct(ctx, client, &putCall, in, opts...)
}

// UpdateItem is client.UpdateItem, sent directly as PutItem is. An update asked to return the
// item's attributes gets them decoded here; a condition that does not hold comes back as the
// SDK's ConditionalCheckFailedException, with the old item when it was asked for.
func UpdateItem(ctx context.Context, client *dynamodb.Client, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return direct(ctx, client, &updateCall, in, opts...)
}

func direct[I, O any](ctx context.Context, client *dynamodb.Client, c *directCall[I, O], in *I, opts ...func(*dynamodb.Options)) (*O, error) {
	v, ok := directs.Load(weak.Make(client))
	if !ok || len(opts) > 0 || in == nil || !c.complete(in) {
		return c.sdk(client, ctx, in, opts...)
	}
	d := v.(*directPut)
	if d.metrics != nil {
		// As the client's stack asks every call.
		in = withIndexes(in, c.asked)
	}
	body, ok := c.encode(in)
	if !ok || time.Now().UnixNano() < d.offUntil.Load() {
		return c.sdk(client, ctx, in)
	}
	slots, err := takeSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer giveSlot(slots)
	start, outer := time.Now(), ctx
	// Without the client's telemetry nothing is recorded: the caller's own span is not this
	// call's to annotate.
	span := trace.SpanFromContext(context.Background())
	if d.tracer != nil {
		ctx, span = d.tracer.Start(ctx, "DynamoDB."+c.op.name, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindClient))
		defer span.End()
	}
	out, err := attempt(ctx, d, c, span, in, body)
	if span.IsRecording() {
		span.SetAttributes(otelaws.SystemAttr(), otelaws.MethodAttr("DynamoDB", c.op.name), otelaws.RegionAttr(d.region))
		span.SetAttributes(otelaws.DynamoDBAttributeBuilder(ctx, middleware.InitializeInput{Parameters: in}, middleware.InitializeOutput{})...)
		if err != nil {
			span.SetAttributes(semconv.ErrorType(err))
			span.SetStatus(codes.Error, err.Error())
		}
	}
	if d.metrics != nil {
		// Timed outside the span, as the stack's middleware times every other call.
		d.metrics.called(outer, c.op.name, start, err)
		if err == nil {
			if cc := c.consumed(out); cc != nil {
				d.metrics.capacity.record(ctx, c.op.name, CapacityWrite, cc)
			}
		}
	}
	return out, err
}

// attempt is the direct attempt and, when it does not succeed, the SDK's.
func attempt[I, O any](ctx context.Context, d *directPut, c *directCall[I, O], span trace.Span, in *I, body []byte) (*O, error) {
	raw, err := d.send(ctx, span, c.op, aws.ToString(c.table(in)), body)
	if err == nil {
		// A success is final: the write is done, so an answer that cannot be read is an
		// error, never a reason to send it again.
		var answer writeAnswer
		err := json.Unmarshal(raw, &answer)
		var attrs map[string]types.AttributeValue
		if err == nil {
			attrs, err = answer.Attributes.item()
		}
		if err != nil {
			return nil, fmt.Errorf("%s answer: %w", c.op.name, err)
		}
		return c.output(attrs, answer.ConsumedCapacity), nil
	}
	var answer *answerError
	if c.failed != nil && errors.As(err, &answer) {
		if err := c.failed(answer, raw); err != nil {
			return nil, err
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	var creds *credentialsError
	if errors.As(err, &creds) {
		// The SDK's path would wait for the same credentials again.
		return nil, err
	}
	if d.metrics != nil {
		d.metrics.fellBack(ctx, fallbackReason(err))
	}
	span.AddEvent("direct attempt left to the SDK", trace.WithAttributes(semconv.ErrorType(err)))
	var busy *busyError
	if errors.As(err, &busy) {
		if err := d.pause(ctx, busy); err != nil {
			return nil, err
		}
	}
	out, err := c.sdk(d.sdk, ctx, in)
	if span.IsRecording() {
		// What otelaws reads from the SDK's answer.
		var resp *awshttp.ResponseError
		switch {
		case err == nil:
			span.SetAttributes(semconv.HTTPResponseStatusCode(http.StatusOK))
			if id, ok := awsmiddleware.GetRequestIDMetadata(c.metadata(out)); ok {
				span.SetAttributes(otelaws.RequestIDAttr(id))
			}
		case errors.As(err, &resp):
			span.SetAttributes(semconv.HTTPResponseStatusCode(resp.HTTPStatusCode()), otelaws.RequestIDAttr(resp.ServiceRequestID()))
		}
	}
	return out, err
}

// conditionFailed answers a condition that did not hold as the SDK would, with the item it
// came back with; nil for any other refusal.
func conditionFailed(answer *answerError, raw []byte) error {
	if answer.code != "ConditionalCheckFailedException" {
		return nil
	}
	var body struct {
		Message string `json:"message"`
		Item    attrMap
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil
	}
	item, err := body.Item.item()
	if err != nil {
		return nil
	}
	return &types.ConditionalCheckFailedException{Message: aws.String(body.Message), Item: item}
}

// Reasons on trigger.dynamodb.direct_put.fallbacks.
const (
	FallbackBusy            = "busy"             // throttling or a server error
	FallbackRefused         = "refused"          // the signature or credentials were refused
	FallbackConditionFailed = "condition_failed" // an attempt whose answer was lost wrote it first
	FallbackAnswer          = "answer"           // any other answer but a 200
	FallbackTransport       = "transport"        // no answer: a connection or timeout failed
)

// fallbackReason classifies why a direct attempt went on to the SDK.
func fallbackReason(err error) string {
	var busy *busyError
	var answer *answerError
	switch {
	case errors.As(err, &busy):
		return FallbackBusy
	case errors.As(err, &answer) && refusedSignature[answer.code]:
		return FallbackRefused
	case errors.As(err, &answer) && answer.code == "ConditionalCheckFailedException":
		return FallbackConditionFailed
	case errors.As(err, &answer):
		return FallbackAnswer
	}
	return FallbackTransport
}

// pause waits what the retryer would wait before a second attempt.
func (d *directPut) pause(ctx context.Context, busy *busyError) error {
	delay, err := d.retryer.RetryDelay(1, busy)
	if err != nil || delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// answerError is an answer other than a 200, by its status and DynamoDB's error code.
type answerError struct {
	status int
	code   string
}

func (e *answerError) Error() string { return fmt.Sprintf("status %d %s", e.status, e.code) }

// busyError is throttling or a server error: worth a retry after a pause.
type busyError struct{ answerError }

// refusedSignature are the codes of a request DynamoDB did not authenticate.
var refusedSignature = map[string]bool{
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"MissingAuthenticationTokenException": true,
	"UnrecognizedClientException":         true,
	"ExpiredTokenException":               true,
}

// send makes the direct attempt. It returns the answer's body on a 200, and with the error of
// any other answer.
func (d *directPut) send(ctx context.Context, span trace.Span, op directOp, table string, body []byte) ([]byte, error) {
	creds, err := d.creds.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	at, err := d.endpoint(ctx, creds.AccountID, table)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, at.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	signed, ok := http.Header(nil), false
	if at.signable {
		signed, ok = d.sign.headers(creds, req.URL.Host, op, body, time.Now())
	}
	if ok {
		req.Header = signed
	} else {
		req.Header["Content-Type"] = directContentTypeValue
		req.Header["X-Amz-Target"] = op.target
		req.Header["Accept-Encoding"] = identityValue
		sum := sha256.Sum256(body)
		if err := d.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "dynamodb", d.region, time.Now()); err != nil {
			return nil, err
		}
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if span.IsRecording() {
		// An attempt of the SDK's after this one sets them again.
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode), otelaws.RequestIDAttr(resp.Header.Get("X-Amzn-Requestid")))
	}
	if resp.StatusCode != http.StatusOK {
		return raw, d.failed(resp.StatusCode, raw)
	}
	return raw, nil
}

// failed classifies an answer other than a 200.
func (d *directPut) failed(status int, raw []byte) error {
	var body struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(raw, &body)
	// "com.amazonaws.dynamodb.v20120810#ThrottlingException" and the like.
	code := body.Type[strings.LastIndexByte(body.Type, '#')+1:]
	e := answerError{status: status, code: code}
	switch {
	case status >= 500 || throttled[code]:
		return &busyError{e}
	case refusedSignature[code]:
		d.offUntil.Store(time.Now().Add(directOff).UnixNano())
	}
	return &e
}

// writeAnswer is a success's body. The SDK's own capacity types take DynamoDB's JSON as it is:
// their fields bear the protocol's names.
type writeAnswer struct {
	Attributes       attrMap
	ConsumedCapacity *types.ConsumedCapacity
}

// encodePut writes in as DynamoDB's JSON protocol has it. It declines (false) what it does not
// answer itself: old attributes or item collection metrics asked back, the legacy Expected
// form, a value type or a string it does not encode; those calls take the SDK's path.
func encodePut(in *dynamodb.PutItemInput) ([]byte, bool) {
	if (in.ReturnValues != "" && in.ReturnValues != types.ReturnValueNone) ||
		(in.ReturnItemCollectionMetrics != "" && in.ReturnItemCollectionMetrics != types.ReturnItemCollectionMetricsNone) ||
		len(in.Expected) > 0 || in.ConditionalOperator != "" || in.TableName == nil {
		return nil, false
	}
	e := jsonWriter{buf: make([]byte, 0, 512), ok: true}
	e.byte('{')
	e.field("TableName")
	e.str(*in.TableName)
	e.byte(',')
	e.field("Item")
	e.item(in.Item)
	e.expressions(in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	e.returns(in.ReturnConsumedCapacity, string(in.ReturnValues), in.ReturnItemCollectionMetrics, in.ReturnValuesOnConditionCheckFailure)
	e.byte('}')
	return e.buf, e.ok
}

// encodeUpdate writes in as DynamoDB's JSON protocol has it, declining (false) what encodePut
// declines and the legacy AttributeUpdates. Any ReturnValues is answered: the attributes come
// back in the answer's JSON whichever were asked for.
func encodeUpdate(in *dynamodb.UpdateItemInput) ([]byte, bool) {
	if (in.ReturnItemCollectionMetrics != "" && in.ReturnItemCollectionMetrics != types.ReturnItemCollectionMetricsNone) ||
		len(in.Expected) > 0 || len(in.AttributeUpdates) > 0 || in.ConditionalOperator != "" || in.TableName == nil {
		return nil, false
	}
	e := jsonWriter{buf: make([]byte, 0, 512), ok: true}
	e.byte('{')
	e.field("TableName")
	e.str(*in.TableName)
	e.byte(',')
	e.field("Key")
	e.item(in.Key)
	if in.UpdateExpression != nil {
		e.byte(',')
		e.field("UpdateExpression")
		e.str(*in.UpdateExpression)
	}
	e.expressions(in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	e.returns(in.ReturnConsumedCapacity, string(in.ReturnValues), in.ReturnItemCollectionMetrics, in.ReturnValuesOnConditionCheckFailure)
	e.byte('}')
	return e.buf, e.ok
}

// expressions writes a write's condition and its expression names and values, those set.
func (e *jsonWriter) expressions(condition *string, names map[string]string, values map[string]types.AttributeValue) {
	if condition != nil {
		e.byte(',')
		e.field("ConditionExpression")
		e.str(*condition)
	}
	// Empty maps are sent, as the SDK sends them, for DynamoDB to refuse.
	if names != nil {
		e.byte(',')
		e.field("ExpressionAttributeNames")
		writeObject(e, names, e.str)
	}
	if values != nil {
		e.byte(',')
		e.field("ExpressionAttributeValues")
		e.item(values)
	}
}

// returns writes what a write asks to have returned, those set.
func (e *jsonWriter) returns(capacity types.ReturnConsumedCapacity, values string, metrics types.ReturnItemCollectionMetrics, onFailure types.ReturnValuesOnConditionCheckFailure) {
	for _, f := range [...]struct{ name, value string }{
		{"ReturnConsumedCapacity", string(capacity)},
		{"ReturnValues", values},
		{"ReturnItemCollectionMetrics", string(metrics)},
		{"ReturnValuesOnConditionCheckFailure", string(onFailure)},
	} {
		if f.value != "" {
			e.byte(',')
			e.field(f.name)
			e.str(f.value)
		}
	}
}

// jsonWriter appends JSON; ok turns false on anything it cannot write faithfully.
type jsonWriter struct {
	buf []byte
	ok  bool
}

func (e *jsonWriter) byte(b byte) { e.buf = append(e.buf, b) }

func (e *jsonWriter) field(name string) {
	e.str(name)
	e.byte(':')
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string. Invalid UTF-8 is declined rather than repaired, so that the
// SDK's path decides what such a value becomes.
func (e *jsonWriter) str(s string) {
	if !utf8.ValidString(s) {
		e.ok = false
		return
	}
	e.byte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		e.buf = append(e.buf, s[start:i]...)
		switch c {
		case '"', '\\':
			e.buf = append(e.buf, '\\', c)
		case '\n':
			e.buf = append(e.buf, '\\', 'n')
		case '\r':
			e.buf = append(e.buf, '\\', 'r')
		case '\t':
			e.buf = append(e.buf, '\\', 't')
		default:
			e.buf = append(e.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	e.buf = append(e.buf, s[start:]...)
	e.byte('"')
}

func (e *jsonWriter) item(m map[string]types.AttributeValue) { writeObject(e, m, e.value) }

// writeObject writes m as a JSON object, each value by write.
func writeObject[V any](e *jsonWriter, m map[string]V, write func(V)) {
	e.byte('{')
	first := true
	for k, v := range m {
		if !first {
			e.byte(',')
		}
		first = false
		e.field(k)
		write(v)
	}
	e.byte('}')
}

// writeArray writes xs as a JSON array, each element by write.
func writeArray[T any](e *jsonWriter, xs []T, write func(T)) {
	e.byte('[')
	for i, x := range xs {
		if i > 0 {
			e.byte(',')
		}
		write(x)
	}
	e.byte(']')
}

// blob writes b in base64; a nil one, which the SDK sends as null, is declined.
func (e *jsonWriter) blob(b []byte) {
	if b == nil {
		e.ok = false
		return
	}
	e.byte('"')
	e.buf = base64.StdEncoding.AppendEncode(e.buf, b)
	e.byte('"')
}

func (e *jsonWriter) value(v types.AttributeValue) {
	e.byte('{')
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		e.field("S")
		e.str(v.Value)
	case *types.AttributeValueMemberN:
		e.field("N")
		e.str(v.Value)
	case *types.AttributeValueMemberB:
		e.field("B")
		e.blob(v.Value)
	case *types.AttributeValueMemberBOOL:
		e.field("BOOL")
		e.buf = strconv.AppendBool(e.buf, v.Value)
	case *types.AttributeValueMemberNULL:
		e.field("NULL")
		e.buf = strconv.AppendBool(e.buf, v.Value)
	case *types.AttributeValueMemberM:
		e.field("M")
		e.item(v.Value)
	case *types.AttributeValueMemberL:
		e.field("L")
		writeArray(e, v.Value, e.value)
	case *types.AttributeValueMemberSS:
		e.field("SS")
		writeArray(e, v.Value, e.str)
	case *types.AttributeValueMemberNS:
		e.field("NS")
		writeArray(e, v.Value, e.str)
	case *types.AttributeValueMemberBS:
		e.field("BS")
		writeArray(e, v.Value, e.blob)
	default:
		e.ok = false
	}
	e.byte('}')
}
