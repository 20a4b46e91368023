package ddb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/storage"
)

// batchGetAttempts bounds the rounds one BatchGet makes for keys DynamoDB left unprocessed.
const batchGetAttempts = 8

// BatchGet reads request (at most 100 keys, as BatchGetItem takes) in as many rounds as the
// keys DynamoDB leaves unprocessed take, backing off between them: unprocessed keys mean
// throttling or a full answer. It returns the items found, by table.
func BatchGet(ctx context.Context, client *dynamodb.Client, request map[string]types.KeysAndAttributes) (map[string][]Item, error) {
	found := map[string][]Item{}
	for attempt := 0; len(request) > 0; attempt++ {
		if attempt > 0 {
			if attempt == batchGetAttempts {
				return nil, fmt.Errorf("batch get: keys still unprocessed: %w", storage.ErrUnavailable)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
			}
		}
		out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: request})
		if err != nil {
			return nil, fmt.Errorf("batch get: %w", Translate(err))
		}
		for table, items := range out.Responses {
			found[table] = append(found[table], items...)
		}
		request = out.UnprocessedKeys
	}
	return found, nil
}
