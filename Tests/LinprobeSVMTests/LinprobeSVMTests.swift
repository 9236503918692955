// Tests of LinprobeSVM live in this folder.
import Testing
