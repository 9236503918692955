// Tests of LinprobeTrunk live in this folder.
import Testing
