Feature: The toy server greets
  @req:TOY-HELLO @role:visitor
  Scenario: The toy server says hello
    When the visitor asks the server for a greeting
    Then the server says the greeting the target declares
