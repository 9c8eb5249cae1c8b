"""The Layer contract: a user's own layers, written here exactly as a contributor would, with no edit to
numnet, train with every optimiser, pass gradient checking, summarise and save; the network names and
checks any layer through the contract."""

import numpy as np
import pytest

import numnet
from numnet.layers import LAYERS, register_layer
from numnet.optimizers import OPTIMIZERS
from oracles import as_numpy

# Backprop against central differences in float64 (gradient_check's step 1e-5): rounding noise is about
# 1e-16·|C|/h ~ 1e-11 of each gradient, truncation h² ~ 1e-10; 1e-6 leaves a wide margin.
GRADIENT_TOLERANCE = 1e-6


class Scale(numnet.Layer):
    """y = x ⊙ s, a learnt scale per feature: a layer with one parameter and an L2-penalised weight."""

    def __init__(self, n_features, *, name=None):
        super().__init__(name=name)
        self.n_features = n_features

    def parameter_shapes(self):
        return {"s": (self.n_features,)}

    def penalized_parameters(self):
        return ("s",)

    def initialize(self, rng):
        self.params["s"][...] = 1.0  # start as the identity

    def forward(self, x, training=False, rng=None):
        self._cache = x if training else None
        return x * self.params["s"]

    def backward(self, grad_output, propagate=True):
        x = self._require_cache()
        xp = x.__array_namespace__()  # the array library of the data (NumPy, CuPy, ...), as the standard says
        self.grads["s"][...] = xp.sum(grad_output * x, axis=0)  # dC/ds = Σ_samples dC/dy ⊙ x
        return grad_output * self.params["s"] if propagate else None


class Cube(numnet.Layer):
    """y = x³, a layer without parameters: nothing but forward and backward."""

    def forward(self, x, training=False, rng=None):
        self._cache = x if training else None
        return x * x * x

    def backward(self, grad_output, propagate=True):
        x = self._require_cache()
        return grad_output * 3.0 * x * x if propagate else None


def custom_network(dtype="float32", seed=0):
    return numnet.Network(layers=[numnet.Dense(3, 6, "tanh"), Scale(6), Cube(), numnet.Dense(6, 2, "softmax")],
                          dtype=dtype, seed=seed)


def spiral_like_data(n_samples=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 3))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def test_custom_layers_get_their_kind_and_default_contract_from_the_base_class():
    assert (Scale.kind, Cube.kind) == ("scale", "cube")
    cube = Cube()
    assert cube.parameter_shapes() == {} and cube.state_shapes() == {} and cube.penalized_parameters() == ()
    assert cube.output_shape((4, 5)) == (4, 5)
    assert cube.config() == {"type": "cube", "name": None}
    assert Scale(3).config() == {"type": "scale", "n_features": 3, "name": None}


def test_custom_layers_are_named_by_kind_and_position_and_their_parameters_follow():
    network = custom_network()
    assert [layer.name for layer in network.layers] == ["dense_0", "scale_1", "cube_2", "dense_3"]
    assert list(network.parameters()) == ["dense_0.W", "dense_0.b", "scale_1.s", "dense_3.W", "dense_3.b"]
    assert network.weight_names() == ["dense_0.W", "scale_1.s", "dense_3.W"]
    assert np.shares_memory(network.layers[1].params["s"], network.flat_parameters)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_network_of_custom_layers_trains_with_every_optimiser(optimizer):
    X, y = spiral_like_data()
    network = custom_network(seed=1)
    history = network.fit(X, y, epochs=40, batch_size=10, optimizer=optimizer, learning_rate=0.02, seed=0)
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    assert set(history.gradient_mean_abs) == {"dense_0.W", "scale_1.s", "dense_3.W"}
    assert np.all(np.isfinite(network.flat_parameters))


def test_a_network_of_custom_layers_passes_gradient_checking_with_l2():
    X, y = spiral_like_data(6)
    network = numnet.Network(layers=[numnet.Dense(3, 4, "tanh"), Scale(4), Cube(), numnet.Dense(4, 2, "softmax")],
                             l2=0.01, dtype="float64", seed=2)
    errors = numnet.gradient_check(network, X, y)
    assert set(errors) == set(network.parameters())
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


def test_custom_layers_show_in_the_summary_with_shapes_and_counts():
    text = custom_network().summary()
    for name, description, count in [("scale_1", "Scale", "6"), ("cube_2", "Cube", "0")]:
        row = next(line for line in text.splitlines() if line.startswith(name))
        assert description in row and "(None, 6)" in row and row.rstrip().endswith(count)
    assert "total parameters: 44" in text  # (3·6 + 6) + 6 + (6·2 + 2)


def test_a_registered_custom_layer_saves_and_loads_bit_for_bit(tmp_path):
    X, y = spiral_like_data()
    network = custom_network()
    network.fit(X, y, epochs=3, batch_size=10, seed=0)
    with pytest.raises(ValueError, match=r"register_layer\(Scale\)"):
        numnet.save_model(network, tmp_path / "unregistered.npz")
    try:
        register_layer(Scale)
        register_layer(Cube)
        numnet.save_model(network, tmp_path / "model.npz")
        loaded = numnet.load_model(tmp_path / "model.npz")
    finally:
        LAYERS.pop("scale", None)
        LAYERS.pop("cube", None)
    assert [type(layer) for layer in loaded.layers] == [numnet.Dense, Scale, Cube, numnet.Dense]
    np.testing.assert_array_equal(loaded.predict_proba(X), network.predict_proba(X))


def test_loading_a_model_whose_layer_type_is_not_registered_says_how_to_register_it(tmp_path):
    network = custom_network()
    try:
        register_layer(Scale)
        register_layer(Cube)
        numnet.save_model(network, tmp_path / "model.npz")
    finally:
        LAYERS.pop("scale", None)
        LAYERS.pop("cube", None)
    with pytest.raises(numnet.CorruptFileError, match=r"unknown layer type 'scale'.*register_layer"):
        numnet.load_model(tmp_path / "model.npz")


def test_register_layer_refuses_non_layers_and_a_second_class_of_the_same_kind():
    with pytest.raises(TypeError, match="subclass of numnet.Layer"):
        register_layer(dict)

    class Dense(numnet.Layer):  # kind "dense", taken by numnet.Dense
        def forward(self, x, training=False, rng=None):
            return x

        def backward(self, grad_output, propagate=True):
            return grad_output

    with pytest.raises(ValueError, match="already registered"):
        register_layer(Dense)


def test_a_layer_without_forward_or_backward_says_what_to_implement():
    class Empty(numnet.Layer):
        pass

    network = numnet.Network(layers=[numnet.Dense(2, 2), Empty(), numnet.Dense(2, 1)], seed=0)
    with pytest.raises(NotImplementedError, match=r"Empty must implement forward\(x, training=False, rng=None\)"):
        network.predict(np.ones((1, 2)))


# ---------------------------------------------------------------------------------------------------------
# Shapes, names and the output hook
# ---------------------------------------------------------------------------------------------------------


def test_layers_that_do_not_fit_are_refused_naming_both_layers():
    with pytest.raises(ValueError, match=r"layers\[2\] \(batch_norm_2\) normalises 5 features.*layers\[1\] "
                                         r"\(activation_1\) gives shape \(None, 4\)"):
        numnet.Network(layers=[numnet.Dense(3, 4), numnet.Activation("relu"), numnet.BatchNorm(5),
                               numnet.Dense(5, 1)])


def test_a_network_must_end_with_one_vector_per_sample():
    with pytest.raises(ValueError, match="end the network with a Dense layer"):
        numnet.Network(layers=[numnet.Dropout(0.1)])


def test_something_that_is_not_a_layer_is_a_type_error():
    with pytest.raises(TypeError, match=r"layers\[1\] must be a numnet Layer"):
        numnet.Network(layers=[numnet.Dense(2, 2), "relu"])


def test_the_same_layer_object_twice_is_refused():
    dense = numnet.Dense(2, 2)
    with pytest.raises(ValueError, match="appears twice"):
        numnet.Network(layers=[dense, dense])


def test_with_layers_the_default_loss_follows_the_last_activation():
    softmax = numnet.Network(layers=[numnet.Dense(2, 3), numnet.Activation("softmax")])
    sigmoid = numnet.Network(layers=[numnet.Dense(2, 1, "sigmoid")])
    linear = numnet.Network(layers=[numnet.Dense(2, 1), numnet.Dropout(0.0)])
    assert softmax.loss.name == "softmax_cross_entropy"
    assert sigmoid.loss.name == "binary_cross_entropy"
    assert linear.loss.name == "mse"


def test_layer_sizes_options_given_with_layers_are_refused_not_ignored():
    with pytest.raises(ValueError, match="output_activation, dropout apply to a network built from layer_sizes"):
        numnet.Network(layers=[numnet.Dense(2, 1)], output_activation="sigmoid", dropout=0.5)


def test_a_trailing_activation_layer_trains_exactly_like_the_fused_dense_output():
    X, y = spiral_like_data()
    fused = numnet.Network(layers=[numnet.Dense(3, 5, "relu"), numnet.Dense(5, 2, "softmax")], dtype="float64",
                           seed=4)
    split = numnet.Network(layers=[numnet.Dense(3, 5, "relu"), numnet.Dense(5, 2), numnet.Activation("softmax")],
                           dtype="float64", seed=4)
    assert split.loss.name == "softmax_cross_entropy"
    fused.fit(X, y, epochs=5, batch_size=8, seed=1)
    split.fit(X, y, epochs=5, batch_size=8, seed=1)
    # The same arithmetic in the same order: the fused loss takes the logits from the Activation layer.
    np.testing.assert_array_equal(split.flat_parameters, fused.flat_parameters)
    np.testing.assert_array_equal(split.history.iteration_loss, fused.history.iteration_loss)


def test_a_layer_passed_where_an_activation_function_is_expected_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"expected an activation function, got the layer Activation.*'relu'"):
        numnet.Dense(2, 3, activation=numnet.Activation("relu"))
    with pytest.raises(TypeError, match="numnet.Activation is the activation layer"):
        numnet.Network([2, 3, 1], activation=numnet.Dropout(0.5))


def test_the_activation_function_base_class_is_still_numnet_activations_activation():
    assert numnet.Activation is numnet.layers.Activation
    assert issubclass(type(numnet.get_activation("relu")), numnet.activations.Activation)


def test_fit_has_the_real_signature_of_numnet_fit():
    import inspect

    method = inspect.signature(numnet.Network.fit).parameters
    function = inspect.signature(numnet.fit).parameters
    assert list(method)[1:] == list(function)[1:]  # (self | network, X, y, *options)
    for name in list(function)[3:]:
        assert method[name].default == function[name].default and method[name].kind == function[name].kind


def test_copy_rebuilds_every_layer_from_its_config_with_weights_and_state():
    network = numnet.Network([3, 5, 2], output_activation="softmax", batch_norm=True, dropout=0.25, seed=0)
    X, y = spiral_like_data()
    network.fit(X, y, epochs=2, batch_size=10, seed=0)
    clone = network.copy(dtype="float64")
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in network.layers]
    assert clone.layers[3].rate == 0.25
    np.testing.assert_allclose(clone.predict_proba(X), network.predict_proba(X), rtol=1e-5, atol=1e-6)
    for name, array in network.state().items():
        np.testing.assert_array_equal(clone.state()[name], as_numpy(array).astype(np.float64))
    clone.flat_state[...] = 0  # independent: the original keeps its running statistics
    assert np.all(as_numpy(network.state()["batch_norm_1.running_var"]) > 0)
