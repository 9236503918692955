import Foundation
import LinprobeCore
import Testing

@Suite struct ShardSpecTests {
    @Test func parsesIofNAndRefusesOutOfRange() throws {
        #expect(try ShardSpec.parse("2/5") == ShardSpec(index: 2, count: 5))
        for bad in ["5/5", "-1/3", "1/0", "1", "a/b", "1/2/3"] {
            #expect(throws: LinprobeError.self, "\(bad)") { try ShardSpec.parse(bad) }
        }
    }

    @Test func slurmArrayVariablesNameTheShard() throws {
        #expect(try ShardSpec.fromSlurm([:]) == nil)
        let env = ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"]
        #expect(try ShardSpec.fromSlurm(env) == ShardSpec(index: 1, count: 4))
        #expect(throws: LinprobeError.self) {
            try ShardSpec.fromSlurm(["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"])
        }
    }

    /// The ranges of all shards tile the rows in order, each starting on a whole unit.
    @Test(arguments: [(120, 32, 3), (80, 32, 3), (1000, 7, 9), (10, 1, 10), (1_281_167, 256, 100)])
    func rangesTileTheRowsOnWholeUnits(_ rows: Int, _ unit: Int, _ count: Int) throws {
        var next = 0
        for i in 0..<count {
            let range = try ShardSpec(index: i, count: count).rowRange(rows: rows, unit: unit)
            #expect(range.lowerBound == next)
            #expect(range.lowerBound % unit == 0)
            #expect(!range.isEmpty)
            next = range.upperBound
        }
        #expect(next == rows)
    }

    @Test func moreShardsThanBatchesIsOneLine() throws {
        let error = #expect(throws: LinprobeError.self) {
            try ShardSpec(index: 0, count: 5).rowRange(rows: 80, unit: 32)
        }
        #expect(error?.message.contains("use at most 3 shards") == true)
    }

    @Test func unitIsAWholeBatchAndAWholeSample() {
        #expect(ShardSpec.unit(batch: 32, views: 1) == 32)
        #expect(ShardSpec.unit(batch: 4, views: 6) == 12)
        #expect(ShardSpec.unit(batch: 10, views: 5) == 10)
    }

    @Test func partStoresLiveBesideTheirSplitStore() {
        let layout = WorkdirLayout("w")
        #expect(
            layout.relativePath(.featurePart(fingerprint: "ab", split: "train", index: 1, count: 3))
                == "features/ab/parts/train-1-of-3.h5")
        #expect(layout.relativePath(.slurmFile(pipeline: "demo", name: "jobs.json")) == "slurm/demo/jobs.json")
    }
}
