@kt1 @search
Feature: Searching the mailbox
  Besides claiming, an application can list the MessageHeaders in its mailbox (`_summary=true`), filtered by
  patient, event and ProcessingStatus, page by page with `_count` and `next` links; and fetch one complete
  message with `_id` - a bare id, or the full URL with or without `/_history/`, as the Python connector sends it.

  Background:
    Given a new patient known to the portal
    And the portal has sent 3 care plans for the patient

  @req:KT1-SEARCH-SUMMARY @req:KT1-SEARCH-PATIENT-FILTER @role:module
  Scenario: A summary search lists the patient's MessageHeaders only
    Given the portal has sent a care plan for another patient
    When the module searches its mailbox for the patient
    Then the search lists 3 messages and only MessageHeader entries

  @req:KT1-SEARCH-PAGING @role:module
  Scenario: A long result is paged with _count and next links
    When the module searches its mailbox for the patient with 2 messages per page
    Then the first page lists 2 messages and links to a next page
    And the next page lists 1 message and has no next link

  @req:KT1-SEARCH-COUNT-CLAMP @role:module
  Scenario: A page size above the maximum is clamped, not refused
    When the module searches its mailbox for the patient with 5000 messages per page
    Then the search lists 3 messages and only MessageHeader entries

  @req:KT1-SEARCH-STATUS-FILTER @role:module
  Scenario Outline: The mailbox can be filtered on ProcessingStatus (parameter <parameter>)
    Given the module has acknowledged the first care plan message as Success
    When the module searches its mailbox for the patient's messages with status Success using the parameter "<parameter>"
    Then the search lists only the first care plan message
    When the module searches its mailbox for the patient's messages with status New using the parameter "<parameter>"
    Then the search lists the other 2 care plan messages

    Examples:
      | parameter        |
      | ProcessingStatus |
      | processingStatus |

  @req:KT1-SEARCH-EVENT-FILTER @role:module
  Scenario: The mailbox can be filtered on the event
    Given the portal has sent a user message for the patient
    When the module searches its mailbox for the patient's CreateOrUpdateUserMessage messages
    Then the search lists only the user message

  @req:KT1-SEARCH-ID @role:module
  Scenario Outline: One complete message can be fetched by its <form>
    When the module looks up the first care plan message by its <form>
    Then the lookup returns the complete first care plan message

    Examples:
      | form          |
      | bare id       |
      | URL           |
      | versioned URL |
