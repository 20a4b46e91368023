package ddb

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

func TestOutcomeTellsFailedConditionsAndThrottlingApart(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{fmt.Errorf("operation error: %w", &types.ConditionalCheckFailedException{}), OutcomeConditionFailed},
		{fmt.Errorf("operation error: %w", &smithy.GenericAPIError{Code: "ThrottlingException"}), OutcomeThrottled},
		{&types.ProvisionedThroughputExceededException{}, OutcomeThrottled},
		{&types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("None")}, {Code: aws.String("ConditionalCheckFailed")}}}, OutcomeConditionFailed},
		{&types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("ConditionalCheckFailed")}, {Code: aws.String("TransactionConflict")}}}, OutcomeError},
		{&types.TransactionCanceledException{}, OutcomeError},
		{&smithy.GenericAPIError{Code: "ValidationException"}, OutcomeError},
		{errors.New("connection refused"), OutcomeError},
	} {
		if got := Outcome(c.err); got != c.want {
			t.Errorf("Outcome(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
