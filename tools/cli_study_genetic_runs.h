// The runs of a genetic pooling search (tools/cli_study_genetic.cpp sets it up): each
// genotype's training in its run directory, its fitness, the generations, the tables, and the
// best genotype's full training.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli_study.h"

namespace convpool::cli {

struct Evaluation {
  Fitness fitness;
  double seconds = 0;
};

class GeneticSearch {
 public:
  GeneticSearch(TrainOptions& base, const GeneticSearchOptions& g,
                const std::vector<std::string>& pools, const std::string& model_text,
                std::vector<PoolGene> genes, int shard, int shards, const Dataset& train,
                const Dataset& validation, ConsoleReporter& reporter)
      : base_(base),
        g_(g),
        pools_(pools),
        text_(model_text),
        genes_(std::move(genes)),
        shard_(shard),
        shards_(shards),
        train_(train),
        validation_(validation),
        reporter_(reporter) {}

  // Every generation, then best.cfg and the tables; returns the individuals.
  std::vector<SearchIndividual> run(const std::string& title, bool plot);
  // The full training of the best genotype and its one test evaluation (final.json).
  void train_best(const SearchIndividual& best, const Dataset& test);
  void write_tables(const std::vector<SearchIndividual>& rows, const std::string& title,
                    bool final);

 private:
  std::string dir(const Genotype& g) const { return base_.out + "/runs/" + genotype_label(g); }
  std::optional<Evaluation> read_fitness(const Genotype& g) const;
  // final.json, or null when there is none; a damaged one is a one-line error.
  nlohmann::json read_final() const;
  // Evaluates `g` unless another live process is at it; false then.
  bool settle(const Genotype& g, const std::string& what);
  // Trains (or resumes) g and writes its fitness.json; a failure is recorded, not thrown.
  Evaluation train_individual(const Genotype& g);
  Evaluation train_genotype(const Genotype& g);
  std::string final_section() const;

  TrainOptions& base_;
  const GeneticSearchOptions& g_;
  const std::vector<std::string>& pools_;
  std::string text_;
  std::vector<PoolGene> genes_;
  int shard_, shards_;
  const Dataset& train_;
  const Dataset& validation_;
  ConsoleReporter& reporter_;
  std::map<std::string, Evaluation> known_;  // by genotype label
};

}  // namespace convpool::cli
