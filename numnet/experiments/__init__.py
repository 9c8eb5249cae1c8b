"""The reference experiments E1-E16, each reproduced with a fixed seed, and their HTML report.

Each experiment's data, model, settings and reference results are stated in the "Specification" section of
its tutorial page (``docs/tutorials/e01-noisy-line.md`` to ``docs/tutorials/e16-gpt.md``).
Each ``run_eN(output_dir, *, quick=False, seed=...)`` trains what the classic write-up trained, saves its
figures as PNG files under ``output_dir/EN/`` and returns an :class:`ExperimentResult` whose rows put
numnet's figure next to the write-up's reference figure with a verdict. ``quick=True`` shortens the long
schedules (E3-E5, E8-E16) so tests and smoke runs finish in seconds; the schedule-dependent rows of a quick run
are marked as not comparable rather than judged against a reference they were never meant to reach.

:func:`run_experiments` runs a selection and :func:`write_report` turns the results into one self-contained
HTML file (figures embedded as base64 PNG data URIs), written atomically.

Run them from the command line with ``numnet experiments [E1 ...] [--quick] [--output DIR]``.

The experiments are an application of the engine, grouped as the tutorials group them: ``first_networks``
(E1-E4 and E7), ``gradients`` (E5, E6), ``tricks`` (E8-E11), ``convolution`` (E12) and ``sequences``
(E13), ``encoder_decoder`` (E14, E15), ``transformer`` (E16), over ``results`` (the result record and its verdicts), ``runner`` (EXPERIMENTS, running a selection)
and ``report`` (the HTML). Every name below, and every constant of the experiments, is importable from
``numnet.experiments``.
"""

from .results import ExperimentResult, INFORMATION, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED
from .first_networks import (E1_EXPECTED_SHAPES, E1_LEARNING_RATE, E1_LOG_EVERY, E1_NOISE, E1_SAMPLES, E1_STEPS,
                             E1_WRITEUP_LEARNING_RATE, E2_LEARNING_RATE, E2_LOG_EVERY, E2_STEPS,
                             E3_ACCURACY_TOLERANCE, E3_ITERATIONS, E3_L2, E3_LEARNING_RATE, E3_LOG_EVERY,
                             E3_LOSS_TOLERANCE, E3_QUICK_ITERATIONS, E3_REFERENCE, E3_VANISHING_RATIO,
                             E4_POOR_CEILING, E4_POOR_LEARNING_RATE, E4_POOR_STEPS, E4_QUICK_POOR_STEPS,
                             E4_SOUND_BATCH_SIZE, E4_SOUND_EPOCHS, E4_SOUND_LEARNING_RATE, E4_SOUND_TARGET,
                             E4_SPLIT_SEED, E7_ACCURACY_TOLERANCE, E7_BATCH_SIZE, E7_EPOCHS, E7_FILE_NAME, E7_HIDDEN,
                             E7_LEARNING_RATE, digits_split, run_e1, run_e2, run_e3, run_e4, run_e7, untrained_shapes,
                             write_iris_csv)
from .gradients import (E5_ACCURACY_TOLERANCE, E5_BATCH_SIZE, E5_CHECK_ENTRIES, E5_CHECK_SAMPLES, E5_GRADIENT_BOUND,
                        E5_ITERATIONS, E5_LEARNING_RATE, E5_QUICK_CHECK_ENTRIES, E5_QUICK_ITERATIONS,
                        E5_REFERENCE_ACCURACY, E6_DERIVATIVE_TOLERANCE, E6_DESCENT_TOLERANCE, E6_GRADIENT_CHECK_BOUND,
                        E6_STEP_BUG_H, SHORTEST_TIMING, run_e5, run_e6, sampled_gradient_check)
from .tricks import (CHANCE_LOSS_DIGITS, E10_BATCH_SIZE, E10_EPOCHS, E10_HIDDEN_LAYERS, E10_LEARNING_RATE,
                     E10_QUICK_EPOCHS, E10_QUICK_SCALES, E10_SCALES, E10_TRAINED_ACCURACY, E10_TRAINING_SAMPLES,
                     E11_BATCH_SIZE, E11_CASES, E11_DROPOUT, E11_GAP_EPOCHS, E11_HIDDEN_LAYERS, E11_L2,
                     E11_LEARNING_RATE, E11_MEMORISED, E11_QUICK_EPOCHS, E11_TRAINING_SAMPLES, E8_BATCH_SIZE,
                     E8_HISTOGRAM_CASES, E8_HISTOGRAM_LAYERS, E8_HISTOGRAM_SAMPLES, E8_ITERATIONS, E8_KEPT_SPREAD,
                     E8_LEARNING_RATE, E8_NO_DIVERSITY, E8_QUICK_ITERATIONS, E8_SATURATION_MARGIN, E9_BATCH_SIZE,
                     E9_BOOK_PATHS, E9_ITERATIONS, E9_PATH_OPTIMIZERS, E9_QUICK_ITERATIONS, E9_START, E9_STEPS,
                     E9_TRAINING_OPTIMIZERS, E9_ZIGZAG_FRACTION, STALLED_ACCURACY, STALL_FRACTION, TRICKS_HIDDEN,
                     e9_function, run_e10, run_e11, run_e8, run_e9, _e10_accuracy, _e9_path, _tricks_datasets)
from .convolution import (E12_BATCH_SIZE, E12_BOOK_ACCURACY, E12_BOOK_TOLERANCE, E12_DIGITS_CNN_BATCH_SIZE,
                          E12_DIGITS_CNN_EPOCHS, E12_DIGITS_CNN_QUICK_EPOCHS, E12_EPOCHS, E12_FILTERS, E12_HIDDEN,
                          E12_KERNEL, E12_LEARNING_RATE, E12_POOL, E12_QUICK_EPOCHS, E12_QUICK_MNIST_IMAGES,
                          E12_WEIGHT_STD, run_e12, simple_conv_net)
from .sequences import (E13_BATCH_SIZE, E13_BOOK_HIDDEN, E13_BOOK_LSTM_PERPLEXITY, E13_BOOK_ROWS, E13_BOOK_SCALES,
                        E13_BOOK_SEED, E13_BOOK_STEPS, E13_CLIP_NORM, E13_CLIPPING_BATCH_SIZE, E13_CLIPPING_EPOCHS,
                        E13_CLIPPING_LEARNING_RATE, E13_CLIPPING_NAMES, E13_EMBEDDING, E13_EPOCHS, E13_HIDDEN,
                        E13_LEARNING_RATE, E13_LONGEST_SAMPLE, E13_MAKEMORE_LOSS, E13_MAKEMORE_SAMPLES, E13_MODELS,
                        E13_QUICK_BATCH_SIZE, E13_QUICK_EPOCHS, E13_QUICK_HIDDEN, E13_QUICK_TRAINING_NAMES,
                        E13_QUICK_VALIDATION_NAMES, E13_SAMPLE_SEED, E13_SAMPLES, E13_SPIKE, E13_SPLIT_SEED,
                        E13_THROUGH_TIME_HIDDEN, E13_THROUGH_TIME_INPUTS, E13_THROUGH_TIME_ROWS,
                        E13_THROUGH_TIME_SCALES, E13_THROUGH_TIME_STEPS, E13_TRAINING_NAMES, E13_VALIDATION_NAMES,
                        bigram_perplexity, book_gradient_norms, book_recurrent_weights, clipping_run, e13_names,
                        language_model, name_rows, rnn_gradient_norms, run_e13, sample_names)
from .encoder_decoder import (ADDITION_RECIPE, BOOK_ADDITION_ACCURACY, BOOK_DATES_ACCURACY, DATES_RECIPE,
                              E14_VARIANTS, Seq2SeqRecipe, Seq2SeqRun, attention_maps, decoded_examples,
                              load_seq2seq_data, run_e14, run_e15, train_seq2seq, write_examples_page)
from .transformer import NANOGPT_CPU, NANOGPT_CPU_LOSS, QUICK, GPTRecipe, gpt_windows, run_e16, train_gpt
from .runner import EXPERIMENTS, check_experiment_ids, run_experiments
from .report import REPORT_STYLE, write_report

# The reference documents these (the constants above stay importable as they were when this was one module;
# the tests also reach three private helpers of E8-E11).
__all__ = [
    "ExperimentResult", "EXPERIMENTS", "check_experiment_ids", "digits_split", "e9_function", "run_e1", "run_e2",
    "run_e3", "run_e4", "run_e5", "run_e6", "run_e7", "run_e8", "run_e9", "run_e10", "run_e11", "run_e12",
    "run_e13", "run_experiments", "sampled_gradient_check", "simple_conv_net", "untrained_shapes", "write_iris_csv",
    "write_report", "bigram_perplexity", "book_gradient_norms", "book_recurrent_weights", "clipping_run", "e13_names",
    "language_model", "name_rows", "rnn_gradient_norms", "sample_names", "run_e14", "run_e15", "train_seq2seq",
    "load_seq2seq_data", "decoded_examples", "attention_maps", "write_examples_page", "Seq2SeqRecipe", "Seq2SeqRun",
    "run_e16", "train_gpt", "gpt_windows", "GPTRecipe", "NANOGPT_CPU",
]
